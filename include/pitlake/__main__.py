"""``python -m pitlake <command>``: install-jars, install-docs-assets, check-java, engine, airflow, demo,
run-day, generate, serve, summary."""

from __future__ import annotations

import argparse
import sys

from pitlake.core.errors import PitlakeError
from pitlake.demo.runner import DEMO_DAYS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pitlake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-java", help="fail with a clear message unless Java 17+ is installed")
    sub.add_parser("install-jars", help="resolve the Delta Lake jars into $PITLAKE_HOME/jars (once)")
    sub.add_parser("install-docs-assets", help="fetch the Data Docs' CSS/JS from the npm registry (once, checked)")
    air = sub.add_parser("airflow", help="run the airflow CLI against the embedded local Airflow")
    air.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("airflow-env", help="print the local Airflow environment as shell exports")
    gen = sub.add_parser("generate", help="write demo landing files for a date range")
    gen.add_argument("--start", required=True)
    gen.add_argument("--end")
    demo = sub.add_parser("demo", help="run feature_pipeline with `airflow dags test` for the demo days")
    demo.add_argument("--start", help="first demo day (default: PITLAKE_DEMO_START)")
    demo.add_argument("--days", type=int, default=DEMO_DAYS, help=f"number of demo days (default {DEMO_DAYS})")
    demo.add_argument("--airflow-days", type=int, default=2, help="last days run through `airflow dags test`")
    demo.add_argument(
        "--experiment",
        default="hgb_search",
        help="after train_model, run this experiment config (conf/experiments) on its training set; '' skips",
    )
    run_day = sub.add_parser("run-day", help="`airflow dags test` a DAG for the data interval of one day")
    run_day.add_argument("dag_id")
    run_day.add_argument("date")
    api = sub.add_parser("catalog-api", help="serve the demo's product catalog API on PITLAKE_CATALOG_API_URL")
    api.add_argument("--host", help="bind address (default: the URL's host; 0.0.0.0 in a container)")
    eng = sub.add_parser("engine", help="the warm Spark engine (a Spark Connect server on 127.0.0.1)")
    eng.add_argument("action", choices=["start", "stop", "status", "restart", "run"],
                     help="run: in the foreground, as a container's main process")  # fmt: skip
    sub.add_parser("summary", help="print the lake's tables, validation outcomes and registered models")
    sub.add_parser("docs", help="rebuild the Data Docs index (the gates rebuild it on a failure or every 5 min)")
    mlf = sub.add_parser("mlflow-ui", help="start the MLflow UI on 127.0.0.1 against the local tracking store")
    mlf.add_argument("--port", type=int, default=5000)
    serve = sub.add_parser("serve", help="serve /features and /predict (FastAPI) on PITLAKE_SERVING_HOST:PORT")
    serve.add_argument("--host", help="bind address (default PITLAKE_SERVING_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default PITLAKE_SERVING_PORT, 8000)")
    serve.add_argument("--use-case", default="purchase_propensity")
    serve.add_argument("--clock", choices=["wall", "materialization"],
                       help="request time: UTC now, or the newest materialization's as_of "
                            "(default PITLAKE_SERVING_CLOCK)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except PitlakeError as err:
        print(f"pitlake {args.command}: error: {err}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    from pitlake.core import settings

    s = settings.load()
    if args.command == "check-java":
        from pitlake.core.jvm import check_java

        print(f"Java {check_java()} found")
    elif args.command == "install-jars":
        from pitlake.core.jars import ensure_delta_jars

        jars = ensure_delta_jars(s)
        print("Delta jars ready: " + ", ".join(j.name for j in jars))
    elif args.command == "install-docs-assets":
        from pitlake.validation.docs_assets import PACKAGES, ensure_cache

        cache = ensure_cache()
        print(f"Data Docs assets ready ({len(PACKAGES)} npm packages, checked): {cache}")
    elif args.command == "airflow":
        from pitlake.airflow.local import ensure_engine, run_airflow

        rest = args.args[1:] if args.args[:1] == ["--"] else args.args
        if rest[:1] in (["standalone"], ["scheduler"]) or rest[:2] in (["dags", "test"], ["tasks", "test"]):
            ensure_engine(s)  # the commands that run tasks: they need the engine
        return run_airflow(rest, s, check=False)
    elif args.command == "airflow-env":
        import shlex

        from pitlake.airflow.local import airflow_env

        base: dict[str, str] = {}
        for key, value in sorted(airflow_env(s, base).items()):
            if key != "PATH":
                print(f"export {key}={shlex.quote(value)}")
    elif args.command == "generate":
        from pitlake.core.dates import parse_date
        from pitlake.demo.landing import generate_range

        start = parse_date(args.start, what="--start")
        end = parse_date(args.end, what="--end") if args.end else start
        result = generate_range(s, start, end)
        print(f"wrote landing files for {len(result['days'])} days under {result['landing']}")
    elif args.command == "catalog-api":
        from urllib.parse import urlsplit

        from pitlake.demo.catalog_api import serve
        from pitlake.demo.landing import demo_config

        url = urlsplit(s.catalog_api_url)
        print(f"catalog API on {s.catalog_api_url} (GET /v1/products/changes, /v1/products/cursor; docs at /docs)")
        serve(demo_config(s), args.host or url.hostname or "127.0.0.1", url.port or 80)
    elif args.command == "demo":
        from pitlake.core.dates import parse_date
        from pitlake.demo.runner import run_demo

        start = parse_date(args.start or s.demo_start, what="demo start")
        return run_demo(s, start, args.days, args.airflow_days, experiment=args.experiment or None)
    elif args.command == "run-day":
        from pitlake.airflow.local import ensure_db, run_dag_for_day
        from pitlake.core.dates import parse_date

        day = parse_date(args.date, what="date")
        ensure_db(s)
        return run_dag_for_day(args.dag_id, day, s)
    elif args.command == "engine":
        import json

        from pitlake.core import engine

        if args.action == "run":
            engine.run_foreground(s)
        if args.action in ("stop", "restart"):
            print(engine.stop(s))
        if args.action in ("start", "restart"):
            state = engine.ensure(s)
            print(f"engine running: {state.url} (pid {state.pid}, master {state.master}, log {engine.log_file(s)})")
        if args.action == "status":
            info = engine.status(s)
            print(json.dumps(info, indent=2))
            return 0 if info["running"] else 1
    elif args.command == "serve":
        import dataclasses

        import uvicorn

        from pitlake.serving.app import create_app

        host, port = args.host or s.serving_host, args.port or s.serving_port
        if args.clock:
            s = dataclasses.replace(s, serving_clock=args.clock)
        app = create_app(s, use_case=args.use_case)
        print(f"pitlake serving {args.use_case} on http://{host}:{port} (docs: /docs, store: {s.online_store}, "
              f"clock: {s.serving_clock})", flush=True)  # fmt: skip
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    elif args.command == "docs":
        from pitlake.validation import build_docs_index

        print(f"data docs: {build_docs_index(s)}")
    elif args.command == "summary":
        from pitlake.summary import print_demo_summary

        print_demo_summary(s)
    elif args.command == "mlflow-ui":
        import subprocess

        from pitlake.core.tracking import artifact_location, tracking_uri

        uri = tracking_uri(s)
        cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(args.port)]  # fmt: skip
        artifacts = artifact_location(s, uri)
        if artifacts:
            cmd += ["--default-artifact-root", artifacts]
        print(f"MLflow UI on http://127.0.0.1:{args.port} ({uri})", flush=True)
        return subprocess.call(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
