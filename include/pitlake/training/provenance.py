"""What a training run records about where its model came from, and the lineage manifest built from it.

* :class:`Snapshot`: one training set as its build pinned it (the build's manifest, the Delta
  table's path and version), and the lineage records derived from it: the training set, every
  input table at the version the build read, every feature view behind them;
* :class:`Provenance`: the rest of the run's origin: the code commit, the Airflow run, the
  validation results that gated its inputs, and the source versions the caller gave;
* :func:`build_manifest`: those, with the model, fit, quality and metrics records, as the
  :class:`pitlake.lineage.manifest.LineageManifest` logged as ``lineage/manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pitlake.core.dates import utc_now
from pitlake.core.settings import Settings
from pitlake.lineage import manifest as lineage
from pitlake.training_set.build import UseCase
from pitlake.training_set.manifest import TrainingSetManifest


@dataclass(frozen=True)
class Snapshot:
    """Training set ``training_set_id`` of ``use_case``: its build manifest (``build``) and its Delta table's path."""

    use_case: UseCase
    training_set_id: str
    build: TrainingSetManifest
    path: str

    @property
    def version(self) -> int:
        """The Delta version of the training set table the build wrote."""
        return self.build.delta_version

    @property
    def feature_columns(self) -> list[str]:
        return list(self.build.feature_columns)

    @property
    def content_hash(self) -> str:
        return self.build.content_hash

    def record(self) -> lineage.TrainingSetRecord:
        ts = self.build
        return lineage.TrainingSetRecord(
            training_set_id=ts.training_set_id,
            use_case=self.use_case.name,
            table=self.use_case.table,
            path=self.path,
            delta_version=ts.delta_version,
            content_hash=ts.content_hash,
            row_count=ts.row_count,
            positives=ts.positives,
            label_start=ts.label_start,
            label_end=ts.label_end,
            as_of_write=ts.as_of_write,
            feature_columns=tuple(ts.feature_columns),
            manifest_path=ts.manifest_path,
        )

    def inputs(self) -> tuple[lineage.InputRecord, ...]:
        """The label spine and feature tables at the versions the build read, sorted by table."""
        return tuple(
            lineage.InputRecord(
                role=lineage.InputRole.LABELS if table == self.use_case.label_table else lineage.InputRole.FEATURES,
                table=table,
                path=str(info["path"]),
                delta_version=int(info["version"]),
                committed_at=lineage.commit_time(str(info["path"]), int(info["version"])),
            )
            for table, info in sorted(self.build.inputs.items())
        )

    def feature_views(self) -> tuple[lineage.FeatureViewRecord, ...]:
        """The use case's feature views whose table the build read, at that table's version."""
        inputs = self.build.inputs
        views = {v.table: v for v in self.use_case.feature_views()}
        return tuple(
            lineage.FeatureViewRecord(
                name=view.name,
                version=view.version,
                table=view.table,
                path=str(inputs[view.table]["path"]),
                delta_version=int(inputs[view.table]["version"]),
                ttl_seconds=int(view.ttl.total_seconds()) if view.ttl is not None else None,
                source=view.source,
                features=tuple(view.feature_names()),
            )
            for table, view in views.items()
            if table in inputs
        )


@dataclass(frozen=True)
class Provenance:
    """The code, Airflow run and validation results behind a training run, and the source versions its caller gave.

    ``upstream_versions`` maps source tables to versions (``{"bronze.events": 12}``), as passed to ``train``.
    """

    code: lineage.CodeRecord
    airflow: lineage.AirflowRecord | None
    validations: tuple[lineage.ValidationRecord, ...]
    upstream_versions: dict[str, Any] | None


def build_manifest(
    settings: Settings,
    snapshot: Snapshot,
    provenance: Provenance,
    *,
    model: lineage.ModelRecord,
    training: lineage.TrainingRecord,
    quality: lineage.QualityRecord,
    metrics: dict[str, float],
    openlineage: lineage.OpenLineageRecord | None = None,
    experiment: lineage.ExperimentRecord | None = None,
) -> lineage.LineageManifest:
    """The lineage manifest of a model trained on ``snapshot``.

    Bronze versions come from ``provenance.upstream_versions`` and the job records under
    ``settings.runs_dir``; an input without any job record gets a note saying its bronze versions are unknown.
    """
    inputs = snapshot.inputs()
    feature_views = snapshot.feature_views()
    upstream = lineage.upstream_records(settings, inputs, provenance.upstream_versions)
    covered = {u.via for u in upstream if u.via}
    notes = [
        f"no job records in {settings.runs_dir} for {record.table}: its bronze versions are unknown"
        for record in inputs
        if record.table not in covered
    ]
    return lineage.LineageManifest(
        schema_version=lineage.SCHEMA_VERSION,
        created_at=utc_now().isoformat(),
        model=model,
        training_set=snapshot.record(),
        inputs=inputs,
        feature_views=feature_views,
        upstream=upstream,
        validations=provenance.validations,
        code=provenance.code,
        packages=lineage.package_versions(),
        airflow=provenance.airflow,
        training=training,
        quality=quality,
        metrics=metrics,
        notes=tuple(notes),
        openlineage=openlineage,
        experiment=experiment,
    )
