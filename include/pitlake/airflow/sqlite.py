"""The local Airflow's SQLite connection arguments (``[database] sql_alchemy_connect_args``).

Every Airflow process imports this at start, so it imports nothing.

A writer waits up to a minute for SQLite's lock instead of failing after pysqlite's 5 s: on 2 busy
cores the scheduler's transactions can hold it longer. A backfill creation that still meets
"database is locked" (a read lock's upgrade conflicts at once, whatever the timeout) is answered 503
and its runs deleted, which can leave a backfill with no run to cancel (the backfill dialog's own
"Unpause on trigger" PATCH is such a concurrent writer: unpause first), and Airflow 3.3.2's
scheduler can stop on a run deleted under it: the README says so. Postgres (docker-compose) needs
none of this.
"""

CONNECT_ARGS: dict[str, object] = {"timeout": 60}
