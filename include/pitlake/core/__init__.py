"""The frame every stage stands on: settings, the Spark session and engine, Delta I/O, dates, errors, the job frame.

Nothing here knows about a stage. ``settings`` reads the environment (the only module that may);
``spark`` opens a session (a Connect session on the warm ``engine``, or a classic JVM);
``delta_io`` does interval-scoped replaces, MERGE and pinned-version reads and lists the lake's
tables; ``job`` is the argument/result/exit-code frame of every ``jobs/<stage>.py``.
"""
