"""Training: a training set's pinned snapshot → candidates fitted, an MLflow run, a registered version.

Entry points (import them from their modules; this package imports nothing, so DAG parsing stays cheap):

* ``pitlake.training.train.train`` / ``TrainResult`` — fit, log, register and gate a model;
* ``pitlake.training.reproduce.reproduce`` — rebuild a model's training set from its pins and retrain;

Supporting modules, each importing only those listed before it: ``dataset`` (pinned read without a JVM,
purged time split, ground-truth ceiling), ``candidates`` (the candidate pipelines, the fit's outcome),
``quality`` (metrics, quality floor, leakage checks), ``fit`` (threshold, fit, evaluate, select),
``provenance`` (the training-set snapshot and the lineage manifest built from it), ``plots`` (the PNG
artifacts), ``mlflow_log`` (what a run logs). The manifest's records live in :mod:`pitlake.lineage`, the
gate and promotion in :mod:`pitlake.registry` (which imports nothing from this package).
"""
