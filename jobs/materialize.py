"""Entry point (no JVM): materialize a feature view's latest rows as of a day's end into the online store.

--date D        as_of = D+1 00:00 (the end of D's data interval: the feature rows D's run wrote)
--as-of T       an explicit instant instead (ISO, UTC)
--version N     the Delta version to read (default: the latest)
--full          read every partition instead of the ones changed since the last materialization
--store KIND    sqlite (the embedded default) or redis (PITLAKE_REDIS_URL)
"""

import argparse
import sys

from pitlake.core import job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--view", required=True, help="feature view, e.g. customer_activity (or name:v2)")
    parser.add_argument("--date", help="the data interval's day, YYYY-MM-DD")
    parser.add_argument("--as-of", help="an explicit as_of instant (UTC), e.g. 2026-02-12T00:00:00")
    parser.add_argument("--version", type=int, help="Delta version of the feature table (default: latest)")
    parser.add_argument("--full", action="store_true", help="read every partition up to as_of")
    parser.add_argument("--store", choices=["sqlite", "redis"], help="default: PITLAKE_ONLINE_STORE")

    def body(args, settings):
        from datetime import datetime, timedelta

        from pitlake.core.dates import day_start, parse_date
        from pitlake.core.errors import ConfigError
        from pitlake.features import get_view
        from pitlake.serving.materialize import materialize
        from pitlake.serving.store import open_store

        view = get_view(args.view)
        if bool(args.date) == bool(args.as_of):
            raise ConfigError("give --date D (as_of = D+1 00:00) or --as-of T, one of them")
        if args.date:
            as_of = day_start(parse_date(args.date, what="--date") + timedelta(days=1))
        else:
            try:
                as_of = datetime.fromisoformat(args.as_of.removesuffix("Z"))
            except ValueError:
                raise ConfigError(f"--as-of {args.as_of!r} is not an ISO instant, e.g. 2026-02-12T00:00:00") from None
        store = open_store(settings, args.store)
        try:
            result = materialize(settings, view, as_of=as_of, version=args.version, store=store, full=args.full)
        finally:
            store.close()
        print(f"{result.view}: {result.keys_written} of {result.keys_in_batch} keys written ({result.mode}, "
              f"{result.table} v{result.delta_version}, as of {result.as_of}, {result.seconds} s)")  # fmt: skip
        from pitlake.serving.materialize import result_lineage

        return f"{result.view}-{as_of.date().isoformat()}", result.to_dict() | {"lineage": result_lineage(result)}

    return job.run("materialize", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
