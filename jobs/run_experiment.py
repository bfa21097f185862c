"""Entry point: run an experiment config (conf/experiments/*.yaml) on a training set, compare its trials,
log them to MLflow, register the best as challenger and gate it; writes the comparison report.

Needs no Spark (the training set is read at its pinned Delta version with deltalake). Without
--training-set-id it uses the use case's most recently built training set. Prints the chosen trial,
its holdout ROC AUC against the ground-truth ceiling, the gate's decision and the report's path.
"""

import argparse
import sys

from pitlake.core import job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help="conf/experiments/X.yaml, or just X")
    parser.add_argument("--training-set-id", help="the id build_training_set printed (default: the newest)")
    parser.add_argument("--upstream", action="append", default=[], help="TABLE=VERSION of a source behind the inputs")
    parser.add_argument("--validation-results", help="JSON list of validation results (ValidationReport.to_dict())")
    parser.add_argument("--training-set-run-id", help="the OpenLineage run id of the build that wrote the training set")
    parser.add_argument("--airflow", help='JSON Airflow identity: {"dag_id": ..., "run_id": ..., ...}')

    def body(args, settings):
        from pitlake.core.openlineage import current
        from pitlake.training.experiment_run import run_experiment, summary_line

        result = run_experiment(
            settings,
            args.config,
            training_set_id=args.training_set_id,
            airflow=job.json_arg(args.airflow, "--airflow", dict),
            validation_results=job.json_arg(args.validation_results, "--validation-results", list),
            upstream_versions=job.table_versions_arg(args.upstream, "--upstream"),
            training_set_run_id=args.training_set_run_id,
            lineage_run=current(),
        )
        print(summary_line(result))
        out = result.to_dict() | {"gate_passed": result.gate_passed}
        return f"{(result.experiment or {}).get('name')}-{result.training_set_id}", out

    return job.run("run_experiment", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
