"""Online serving: the online store, materialization into it, and the FastAPI app on top.

* :mod:`~pitlake.serving.store`: the :class:`OnlineStore` interface, SQLite (embedded) and Redis;
  writes monotonic per key.
* :mod:`~pitlake.serving.materialize`: the latest feature row per key as of an instant, from a
  pinned Delta version (delta-rs, no JVM), incremental by the partitions changed since the last run.
* :mod:`~pitlake.serving.lookup`: a use case's features for entity keys at a request time (TTL as
  the point-in-time join applies it).
* :mod:`~pitlake.serving.champion`: the registry's champion, reloaded when the alias moves.
* :mod:`~pitlake.serving.app`: ``/health``, ``/features``, ``/predict``; predictions logged by
  :mod:`~pitlake.serving.prediction_log` to ``monitoring.predictions``.
* :mod:`~pitlake.serving.skew`: the served vectors and scores against the training-set assembly.
"""
