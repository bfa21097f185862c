"""The demo shop: a seeded generator of landing files, and the runner behind ``make demo``.

* ``generator`` — day-by-day events and profile changes with injected defects and known ground truth;
* ``landing`` — writes a range of demo days under ``PITLAKE_HOME/landing`` from settings;
* ``runner`` — ``make demo``: history in one Spark session, the last days through ``airflow dags test``.
"""
