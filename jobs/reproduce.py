"""spark-submit entry point: rebuild a registered model's training set from its lineage pins and retrain it.

Fails (exit 2, one line) when a pinned Delta version was vacuumed, the rebuilt rows hash differently,
or the retrained metrics differ beyond the tolerance; nothing is logged or registered.
"""

import argparse
import sys

from pitlake.core import job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="registered model name, e.g. purchase_propensity")
    parser.add_argument("--version", required=True, type=int, help="registered model version")

    def body(args, settings):
        from pitlake.core.spark import get_spark
        from pitlake.training.reproduce import preflight, reproduce

        preflight(settings, args.model, args.version)  # registry and pins first: fail before starting Spark
        result = reproduce(get_spark("reproduce"), settings, args.model, args.version)
        print(
            f"{args.model} v{args.version} reproduced: training set {result['training_set_id']} hash matches, "
            f"max metric difference {result['max_abs_difference']:.3g} <= {result['tolerance']}"
        )
        return f"{args.model}-v{args.version}", result

    return job.run("reproduce", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
