"""``pitlake summary`` (and the end of ``make demo``): the lake's tables with their Delta version and row
count, the latest validation outcome per suite and the registered models, read without a JVM (delta-rs)."""

from __future__ import annotations

from pitlake.core.delta_io import lake_tables
from pitlake.core.settings import Settings


def print_lake_summary(settings: Settings) -> None:
    from deltalake import DeltaTable

    tables = lake_tables(settings)
    if not tables:
        print(f"no Delta tables under {settings.lake} yet")
        return
    print(f"Delta tables under {settings.lake}:")
    print(f"  {'table':<32} {'version':>7} {'rows':>10}")
    for name, path in tables:
        dt = DeltaTable(str(path))
        rows = dt.to_pyarrow_dataset().count_rows()
        print(f"  {name:<32} {dt.version():>7} {rows:>10}")


def print_validation_summary(settings: Settings) -> None:
    """The latest validation outcome per suite, from ``ops.validation_results`` (delta-rs)."""
    from deltalake import DeltaTable

    path = settings.lake / "ops" / "validation_results"
    if not (path / "_delta_log").is_dir():
        print("no validation results yet")
        return
    df = DeltaTable(str(path)).to_pandas(columns=["result_id", "suite", "validated_at", "success", "severity",
                                                  "expectation_success"])  # fmt: skip
    latest = df.sort_values("validated_at").groupby("suite").tail(1)[["suite", "result_id"]]
    print("Latest validation per suite:")
    for suite, result_id in latest.itertuples(index=False):
        rows = df[df["result_id"] == result_id]
        failed = rows[~rows["expectation_success"].astype(bool)]
        crit = int((failed["severity"] == "critical").sum())
        warn = int((failed["severity"] == "warning").sum())
        status = "passed" if bool(rows["success"].iloc[0]) else "FAILED"
        print(f"  {suite:<40} {status:<7} {len(rows):>3} checks, {crit} critical / {warn} warning failures")
    docs = settings.gx_dir / "data_docs"
    index = next(iter(sorted(docs.rglob("index.html"))), None) if docs.is_dir() else None
    print(f"Data Docs: {index or docs}")


def print_model_summary(settings: Settings) -> None:
    try:
        from mlflow import MlflowClient

        from pitlake.core.tracking import tracking_uri
    except ImportError:  # pragma: no cover - training extras missing
        return
    uri = tracking_uri(settings)
    client = MlflowClient(tracking_uri=uri)
    print(f"MLflow: {uri}  (open the UI with `make mlflow`)")
    for model in client.search_registered_models():
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(model.aliases.items())) or "no aliases"
        print(f"  registered model {model.name}: {aliases}")
        champion = model.aliases.get("champion")
        if champion:
            version = client.get_model_version(model.name, champion)
            run = client.get_run(str(version.run_id))
            shown = ("roc_auc", "pr_auc", "ceiling_auc", "quality_floor")
            metrics = ", ".join(f"{k}={run.data.metrics[k]:.4f}" for k in shown if k in run.data.metrics)
            print(f"  champion v{champion}: run {version.run_id} ({metrics}); lineage: lineage/manifest.json")


def print_demo_summary(settings: Settings) -> None:
    print_lake_summary(settings)
    print()
    print_validation_summary(settings)
    print()
    print_model_summary(settings)
    print()
    print_lineage_summary(settings)
    print(f"\nAirflow home: {settings.airflow_home} (open the UI with `make airflow`)")


def print_lineage_summary(settings: Settings) -> None:
    """The OpenLineage events under ``lineage/`` and the newest model's path back to the landing files."""
    from pitlake.core.openlineage import completed_runs, read_events, trace

    events = read_events(settings.lineage_dir) if settings.lineage_dir.is_dir() else []
    runs = completed_runs(events)
    print(f"OpenLineage: {len(events)} events, {len(runs)} completed job runs in {settings.lineage_dir}")
    models = [o for r in runs if r["job"].startswith("train_model.") for o in r["outputs"]]
    if models:
        print(f"  how {models[-1][0]} was made (newest first, each dataset at the version the next job read):")
        for line in trace(runs, models[-1]):
            print("    " + line)
