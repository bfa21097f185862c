"""Lineage: the typed, versioned manifest (``lineage/manifest.json`` in every MLflow run) that pins each
input's Delta version, and its builder from the jobs' records. See :mod:`pitlake.lineage.manifest`.
"""
