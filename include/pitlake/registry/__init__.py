"""The MLflow model registry: the champion/challenger gate, manual promotion and rollback, and the Delta
versions registered models pin (the maintenance DAG's VACUUM guard). See :mod:`pitlake.registry.promote`.
"""
