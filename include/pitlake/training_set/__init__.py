"""Training set (``training_sets.<use_case>``): a label spine joined point-in-time to feature views.

Reads the use case's label table (the spine: keys, ``label_time``, label) and each of its feature
views' tables, every one at a pinned Delta version (the latest, or the pins of an earlier build).
Writes ``training_sets.<use_case>`` (partitioned by ``training_set_id``, a replace of exactly that
id) and its manifest ``lake/training_sets/_manifests/<use_case>/<id>.json``: the pins, row count
and content hash that rebuild the same rows.

Time contract: a spine row at time ``t`` only sees feature rows with ``feature_time <= t``, no older
than the view's TTL (``feature_time >= t - ttl``), and in as-of-write mode only rows written by
``t`` (``computed_at <= t``). A leakage audit checks the first two on every build.

Modules (this package imports nothing, so importing it stays cheap): :mod:`~pitlake.training_set.pit`
(the point-in-time join; the column names, checks and output planning it shares with the
reference joins of the benchmarks are in :mod:`~pitlake.training_set.pit_frame`),
:mod:`~pitlake.training_set.build` (use cases and the job-level build),
:mod:`~pitlake.training_set.manifest` (the typed, versioned manifest).
"""
