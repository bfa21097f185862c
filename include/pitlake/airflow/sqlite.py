"""The local Airflow's SQLite connection arguments (``[database] sql_alchemy_connect_args``).

Every Airflow process imports this at start, so it imports nothing.

A writer waits up to a minute for SQLite's lock instead of failing after pysqlite's 5 s. On 2 busy
cores the scheduler's transactions can hold the lock longer than that, and a backfill created from
the UI (or the CLI) that meets "database is locked" is deleted again run by run under the running
scheduler, which then stops on the deleted run (Airflow 3.3.2). Postgres (docker-compose) needs none.
"""

CONNECT_ARGS: dict[str, object] = {"timeout": 60}
