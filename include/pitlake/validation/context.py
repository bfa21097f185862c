"""The Great Expectations context a gate runs in: ephemeral, one per process and ``gx_dir``.

Suites, checkpoints and validation definitions live in memory; validation results and the Data Docs
site (:data:`DOCS_SITE`) are on disk under ``$PITLAKE_HOME/gx``, so the Data Docs index lists every
process's runs.
"""

from __future__ import annotations

from typing import Any

from pitlake.core.settings import Settings

DOCS_SITE = "pitlake"

_CONTEXTS: dict[str, Any] = {}


def gx_context(settings: Settings) -> Any:
    """An ephemeral GX context, one per process and ``gx_dir``: suites in memory, results and Data Docs on disk."""
    key = str(settings.gx_dir)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = _new_context(settings)
    return _CONTEXTS[key]


def _new_context(settings: Settings) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig

    root = settings.gx_dir
    in_memory = {"class_name": "InMemoryStoreBackend"}

    def on_disk(folder: str) -> dict[str, str]:
        return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(root / folder)}

    config = DataContextConfig(
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        stores={
            "expectations_store": {"class_name": "ExpectationsStore", "store_backend": in_memory},
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": in_memory},
            "validation_definition_store": {"class_name": "ValidationDefinitionStore", "store_backend": in_memory},
            # On disk, so the Data Docs index lists every run, not only this process's.
            "validation_results_store": {
                "class_name": "ValidationResultsStore",
                "store_backend": on_disk("validations"),
            },
        },
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": on_disk("data_docs"),
                # The index reads every listed result file: keep it to the latest runs (older pages stay).
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "validation_results_limit": 500},
            }
        },
        analytics_enabled=False,
        progress_bars={"globally": False},  # type: ignore[arg-type]
    )
    return gx.get_context(mode="ephemeral", project_config=config)
