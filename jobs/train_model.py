"""Entry point: train a use case's model on one training set, log it to MLflow, register and gate it.

Needs no Spark (the training set is read at its pinned Delta version with deltalake), so Airflow can
run it as a plain Python task. Prints the run id, the registered version and what the promotion gate
did with the aliases (champion / challenger / previous).
"""

import argparse
import sys

from pitlake.core import job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--use-case", default="purchase_propensity", help="e.g. purchase_propensity")
    parser.add_argument("--training-set-id", required=True, help="the id build_training_set printed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--feature", action="append", default=[], help="train on this feature only (repeatable)")
    parser.add_argument("--upstream", action="append", default=[], help="TABLE=VERSION of a source behind the inputs")
    parser.add_argument("--validation-results", help="JSON list of validation results (ValidationReport.to_dict())")
    parser.add_argument("--training-set-run-id", help="the OpenLineage run id of the build that wrote the training set")
    parser.add_argument("--airflow", help='JSON Airflow identity: {"dag_id": ..., "run_id": ..., ...}')

    def body(args, settings):
        from pitlake.core.openlineage import current
        from pitlake.training.recommend import train_use_case

        airflow = job.json_arg(args.airflow, "--airflow", dict)
        validations = job.json_arg(args.validation_results, "--validation-results", list)
        result = train_use_case(
            settings,
            use_case=args.use_case,
            training_set_id=args.training_set_id,
            airflow=airflow,
            validation_results=validations,
            upstream_versions=job.table_versions_arg(args.upstream, "--upstream"),
            feature_columns=args.feature or None,
            seed=args.seed,
            training_set_run_id=args.training_set_run_id,
            lineage_run=current(),
        )
        gate = "passed" if result.gate_passed else "failed: " + "; ".join(result.gate["reasons"])
        metric = "ndcg_at_10" if "ndcg_at_10" in result.metrics else "roc_auc"
        print(
            f"{result.model_name} v{result.model_version} ({result.selected_model}) run {result.run_id}: "
            f"{metric} {result.metrics[metric]:.4f} (floor {result.quality_floor:.4f}); gate {gate}; "
            f"aliases {result.aliases}"
        )
        out = result.to_dict() | {"gate_passed": result.gate_passed}
        return f"{result.use_case}-{result.training_set_id}", out

    return job.run("train_model", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
