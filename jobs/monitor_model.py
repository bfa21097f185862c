"""Entry point: check the serving model (the use case's champion) for one day, without Spark.

Realized ROC AUC of its matured predictions against the gate's floor, PSI of the served features
against its training set; writes the HTML report under $PITLAKE_HOME/monitoring/reports and logs it to
the champion's MLflow run. Prints the result; exits 1 with the one-line summary on a breach (2 for an
error such as no champion yet).
"""

import argparse
import sys

from pitlake.core import job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--use-case", default="purchase_propensity", help="e.g. purchase_propensity")
    parser.add_argument("--date", required=True, help="the day to monitor, YYYY-MM-DD (drift: what was served then)")
    parser.add_argument("--eval-days", type=int, default=7, help="days of matured predictions to evaluate")
    parser.add_argument("--drift-days", type=int, default=1, help="days of served vectors ending at --date")
    parser.add_argument("--psi-threshold", type=float, default=0.2, help="a feature's PSI above this is a breach")
    parser.add_argument("--auc-floor", type=float, help="ROC AUC floor (default: the champion's gate floor)")
    breach: list[str] = []

    def body(args, settings):
        from pitlake.core.dates import parse_date
        from pitlake.monitoring.monitor import monitor

        day = parse_date(args.date, what="--date")
        result = monitor(
            settings,
            args.use_case,
            day,
            eval_days=args.eval_days,
            drift_days=args.drift_days,
            psi_threshold=args.psi_threshold,
            auc_floor=args.auc_floor,
        )
        print(result.message)
        if result.breached:
            breach.append(result.message)
        return f"{args.use_case}-{day}", result.to_dict()

    code = job.run("monitor_model", parser, body, argv)
    if code == 0 and breach:
        print(f"pitlake monitor_model: breach: {breach[0]}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
