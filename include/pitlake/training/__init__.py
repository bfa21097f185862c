"""Training, lineage and registry: a training set's pinned snapshot → an MLflow run and a gated registry alias.

Entry points (import them from their modules; this package imports nothing, so DAG parsing stays cheap):

* ``pitlake.training.train.train`` / ``TrainResult`` — fit, log, register and gate a model;
* ``pitlake.training.registry.promote`` / ``pinned_versions`` — manual promotion or rollback; the
  Delta versions registered models pin (the maintenance DAG's VACUUM guard);
* ``pitlake.training.reproduce.reproduce`` — rebuild a model's training set from its pins and retrain;
* ``pitlake.training.tracking.tracking_uri`` — where MLflow lives.

Supporting modules: ``dataset`` (pinned read without a JVM, purged time split, ground-truth ceiling),
``lineage`` (the typed ``lineage/manifest.json``), ``plots`` (the PNG artifacts).
"""
