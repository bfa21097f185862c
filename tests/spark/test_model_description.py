"""The registered version's description (issue 19): what a person reads on the MLflow version page.

The text is checked word for word on hand-built inputs (no Spark, no MLflow), then on a real MLflow
SQLite store after training and the gate, after a better model replaced the champion, and after a
rollback (the status lines of every version involved are rewritten; the ``gate.*`` tags stay).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from pitlake.lineage import manifest as lineage
from pitlake.registry.describe import describe_version
from pitlake.registry.promote import GateDecision
from pitlake.training_set.build import UseCase

from tests.spark.test_training import client_for, synthetic, write_training_set

MODEL = "purchase_propensity"
USE_CASE = UseCase(
    name=MODEL,
    label_table="labels.purchase_propensity",
    label_column="label",
    views=("customer_activity:v1", "customer_profile:v1"),
    description="Will a customer who visits the shop buy within the next 7 days?",
)
FOOTER = "_Written by pitlake from the lineage manifest and the `gate.*` and `promotion.*` tags; rewritten on every alias move._"  # noqa: E501


@pytest.fixture()
def home(mlflow_home):
    return mlflow_home


def manifest(*, version: int, ground_truth: bool = True, dirty: bool = False) -> lineage.LineageManifest:
    """A hand-built manifest: training set ``ts-0301`` (Delta v7) from three inputs and bronze.events."""
    features = ("count_page_views_7d", "count_purchases_28d", "segment", "tenure_days")
    return lineage.LineageManifest(
        schema_version="1",
        created_at="2026-03-02T09:29:00",
        model=lineage.ModelRecord(MODEL, version, "run-1", "runs:/run-1/model", "random_forest"),
        training_set=lineage.TrainingSetRecord(
            training_set_id="ts-0301",
            use_case=MODEL,
            table="training_sets.purchase_propensity",
            path="/lake/training_sets/purchase_propensity",
            delta_version=7,
            content_hash="abc",
            row_count=4875,
            positives=2216 if ground_truth else None,
            label_start="2026-01-01",
            label_end="2026-02-09",
            as_of_write=not ground_truth,
            feature_columns=features,
            manifest_path=None,
        ),
        inputs=(
            lineage.InputRecord(lineage.InputRole.LABELS, "labels.purchase_propensity", "/lake/l", 4, None),
            lineage.InputRecord(lineage.InputRole.FEATURES, "features.customer_activity", "/lake/a", 6, None),
            lineage.InputRecord(lineage.InputRole.FEATURES, "features.customer_profile", "/lake/p", 2, None),
        ),
        feature_views=(),
        upstream=(
            lineage.UpstreamRecord("bronze.events", "/lake/b", (12,), None, lineage.UpstreamSource.ARGUMENT),
            lineage.UpstreamRecord(
                "bronze.events", "/lake/b", (10, 11), "features.customer_activity", lineage.UpstreamSource.JOB_RECORDS
            ),
        )
        if ground_truth
        else (),
        validations=(),
        code=lineage.CodeRecord("0123abcd4567ef", dirty),
        packages={},
        airflow=None,
        training=lineage.TrainingRecord(
            seed=7,
            candidates=("logistic_regression", "random_forest"),
            selected="random_forest",
            feature_columns=features if ground_truth else features[:1],
            eval_fraction=0.2,
            purge_days=7,
            eval_start="2026-02-02T00:00:00",
            train_rows=3055,
            eval_rows=958,
            threshold=0.4,
            threshold_method="best_f1",
        ),
        quality=lineage.QualityRecord(0.8258, 0.8, None, 0.7932, "ground_truth", 0.02, False, ()),
        metrics={},
    )


def decision(version: int, **changes) -> GateDecision:
    """v``version`` passed against champion v1, re-scored on its evaluation rows; ``changes`` override."""
    fields = dict(
        passed=True,
        floor_passed=True,
        reasons=(),
        model=MODEL,
        candidate_version=version,
        candidate_roc_auc=0.8235,
        candidate_pr_auc=0.7702,
        champion_version=1,
        champion_roc_auc=0.7997,
        champion_pr_auc=0.7412,
        quality_floor=0.7932,
        floor_source="ground_truth",
        suspected_leakage=False,
        margin=0.002,
        pr_auc_tolerance=0.01,
        decided_at="2026-03-02T09:29:41.123456",
    )
    return GateDecision(**(fields | changes))


def move(actor: str, reason: str, at: str, replaced: int | None, forced: bool = False) -> dict:
    """A ``promotion.history`` entry as :func:`pitlake.registry.promote.promote` writes it."""
    return {
        "alias": "champion",
        "actor": actor,
        "reason": reason,
        "forced": forced,
        "replaced_version": replaced,
        "at": at,
    }


def status_line(text: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith("- **Status:**")]
    return line.removeprefix("- **Status:** ")


def gate_line(text: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith("- **Gate:**")]
    return line.removeprefix("- **Gate:** ")


# --------------------------------------------------------------------------- the text, on hand-built inputs


def test_a_champion_that_passed_the_gate_is_described_from_its_manifest_metrics_gate_and_aliases():
    text = describe_version(
        MODEL,
        3,
        manifest=manifest(version=3),
        metrics={
            "roc_auc": 0.82351,
            "pr_auc": 0.77018,
            "log_loss": 0.51302,
            "ceiling_auc": 0.82577,
            "quality_floor": 0.79319,
        },
        gate=decision(3).tags(),
        aliases={"champion": 3, "previous": 1},
        champion_move=move("gate", "passed the promotion gate", "2026-03-02T09:29:42.5", replaced=1),
        use_case=USE_CASE,
    )
    assert text == "\n".join(
        [
            "### purchase_propensity v3 · champion",
            "Predicts `label` per `customer_id` at `label_time`: *Will a customer who visits the shop buy within the "
            "next 7 days?* (use case `purchase_propensity`).",
            "",
            "- **Status:** `champion` since 2026-03-02 09:29 UTC, by the promotion gate; previously v1, "
            "now `previous`.",
            "- **Gate:** passed on 2026-03-02 09:29 UTC → promoted to champion, replacing v1: ROC AUC 0.8235 ≥ floor "
            "0.7932; beats v1's 0.7997 on the same rows by ≥ 0.002; PR AUC 0.7702 ≥ v1's 0.7412 − 0.01; no leakage "
            "suspected.",
            "- **Data:** `training_sets.purchase_propensity` Delta v7 (training set `ts-0301`: 4,875 rows, 2,216 "
            "positive, label dates 2026-01-01..2026-02-09); inputs labels.purchase_propensity v4, "
            "features.customer_activity v6, features.customer_profile v2; from bronze.events v10, v11, v12.",
            "- **Model:** `random_forest` (best of 2 by evaluation ROC AUC) on 4 features; trained on 3,055 rows, "
            "evaluated on 958 rows from 2026-02-02; commit `0123abcd`.",
            "",
            "| metric | v3 | v1 (champion at the gate, same rows) | ground-truth ceiling | floor |",
            "| --- | ---: | ---: | ---: | ---: |",
            "| ROC AUC | 0.8235 | 0.7997 | 0.8258 | 0.7932 |",
            "| PR AUC | 0.7702 | 0.7412 | – | – |",
            "| log loss | 0.5130 | – | – | – |",
            "",
            FOOTER,
        ]
    )


def test_a_challenger_the_gate_kept_says_each_failed_check_in_words_and_the_fallback_floor():
    reasons = (
        "Metric roc_auc value threshold check failed: candidate model roc_auc = 0.4676, roc_auc threshold = 0.55. "
        "Metric roc_auc minimum absolute change check failed: candidate model roc_auc = 0.4676, baseline model "
        "roc_auc = 0.7997, roc_auc minimum absolute change threshold = 0.002.",
        "Metric pr_auc value threshold check failed: candidate model pr_auc = 0.4255, pr_auc threshold = 0.7312.",
    )
    gate = decision(
        2,
        passed=False,
        floor_passed=False,
        reasons=reasons,
        candidate_roc_auc=0.4676,
        candidate_pr_auc=0.4255,
        quality_floor=0.55,
        floor_source="fallback: no ground truth",
    )
    text = describe_version(
        MODEL,
        2,
        manifest=manifest(version=2, ground_truth=False, dirty=True),
        metrics={"roc_auc": 0.4676, "pr_auc": 0.4255, "quality_floor": 0.55},  # no ceiling, no log loss logged
        gate=gate.tags(),
        aliases={"champion": 1, "challenger": 2},
        champion_move=move("gate", "passed the promotion gate", "2026-03-01T08:00:00", replaced=None),
        use_case=None,  # a use case this pitlake does not define (any more)
    )
    assert text == "\n".join(
        [
            "### purchase_propensity v2 · challenger",
            "Predicts the label of use case `purchase_propensity` (not defined in this pitlake).",
            "",
            "- **Status:** `challenger`, not champion (v1 is).",
            "- **Gate:** failed on 2026-03-02 09:29 UTC → kept as challenger (v1 stayed champion), because ROC AUC "
            "0.4676 is below the floor 0.5500; ROC AUC 0.4676 does not beat v1's 0.7997 on the same rows by 0.002; "
            "PR AUC 0.4255 is below v1's 0.7412 − 0.01.",
            "- **Data:** `training_sets.purchase_propensity` Delta v7 (training set `ts-0301`: 4,875 rows, label dates "
            "2026-01-01..2026-02-09, as of write); inputs labels.purchase_propensity v4, features.customer_activity "
            "v6, features.customer_profile v2.",
            "- **Model:** `random_forest` (best of 2 by evaluation ROC AUC) on 1 feature; trained on 3,055 rows, "
            "evaluated on 958 rows from 2026-02-02; commit `0123abcd` with uncommitted changes.",
            "",
            "| metric | v2 | v1 (champion at the gate, same rows) | ground-truth ceiling | floor |",
            "| --- | ---: | ---: | ---: | ---: |",
            "| ROC AUC | 0.4676 | 0.7997 | – | 0.5500 (fallback: no ground truth) |",
            "| PR AUC | 0.4255 | 0.7412 | – | – |",
            "",
            FOOTER,
        ]
    )


def test_a_leaky_first_model_keeps_the_leakage_reason_verbatim_and_an_ungated_version_says_so():
    leaky = decision(
        1,
        passed=False,
        floor_passed=False,
        suspected_leakage=True,
        champion_version=None,
        champion_roc_auc=None,
        champion_pr_auc=None,
        decided_at="2026-03-02T23:59:59+02:00",
        reasons=(
            "suspected leakage: feature count_add_to_carts_1d alone separates the evaluation labels (AUC 1.0000)",
        ),
    )
    common = dict(
        manifest=manifest(version=1), metrics={"roc_auc": 1.0, "pr_auc": 1.0}, champion_move=None, use_case=USE_CASE
    )
    text = describe_version(MODEL, 1, gate=leaky.tags(), aliases={"challenger": 1}, **common)
    assert gate_line(text) == (
        "failed on 2026-03-02 21:59 UTC → kept as challenger (there was no champion), because suspected leakage: "
        "feature count_add_to_carts_1d alone separates the evaluation labels (AUC 1.0000)."
    )
    assert status_line(text) == "`challenger`, there is no champion."
    assert "| ROC AUC | 1.0000 | – | 0.7932 |" in text.splitlines()  # no champion column; the floor from the tags
    ungated = describe_version(MODEL, 1, gate={}, aliases={"champion": 1}, **common)
    assert gate_line(ungated) == "never gated (registered outside `train`)."
    assert status_line(ungated) == "`champion` (no promotion record)."


@pytest.mark.parametrize(
    ("version", "aliases", "champion_move", "expected"),
    [
        (
            1,
            {"champion": 1, "previous": 3},
            move("alice", "v3 regressed in the shop", "2026-03-03T10:15:00", 3),
            "`champion` since 2026-03-03 10:15 UTC, by alice: v3 regressed in the shop; previously v3, now `previous`.",
        ),
        (
            3,
            {"champion": 1, "previous": 3},
            move("alice", "v3 regressed in the shop", "2026-03-03T10:15:00", 3),
            "`previous`, the rollback target: champion until 2026-03-03 10:15 UTC, when v1 replaced it (by alice: v3 "
            "regressed in the shop).",
        ),
        (
            3,
            {"champion": 1, "previous": 3},
            move("bob", "by hand", "2026-03-04T11:00:00", None),
            "`previous`, the rollback target.",
        ),
        (
            2,
            {"champion": 1, "previous": 3},
            move("alice", "v3 regressed in the shop", "2026-03-03T10:15:00", 3),
            "no alias: not served.",
        ),
        (
            1,
            {"champion": 1, "staging": 1},
            move("carol", "demo only", "2026-03-04T00:00:00", None, forced=True),
            "`champion` since 2026-03-04 00:00 UTC, by carol: demo only (forced past the gate); the first champion; "
            "also `staging`.",
        ),
        (
            4,
            {"champion": 1, "previous": 4},
            move("dave", "rollback", "2026-03-05T12:00:00", 2),
            "`previous`, the rollback target.",
        ),  # previous moved by hand, not by the champion's move
        (
            2,
            {"champion": 5, "previous": 2},
            move("gate", "passed the promotion gate", "2026-03-06T07:45:00", 2),
            "`previous`, the rollback target: champion until 2026-03-06 07:45 UTC, when v5 replaced it (by the "
            "promotion gate).",
        ),
    ],
)
def test_the_status_line_says_where_the_version_stands_since_when_by_whom_and_why(
    version, aliases, champion_move, expected
):
    text = describe_version(
        MODEL,
        version,
        manifest=manifest(version=version),
        metrics={},
        gate=decision(version).tags(),
        aliases=aliases,
        champion_move=champion_move,
        use_case=USE_CASE,
    )
    assert status_line(text) == expected
    held = " · ".join(a for a in ("champion", "challenger", "previous", "staging") if aliases.get(a) == version)
    assert text.splitlines()[0] == f"### purchase_propensity v{version} · {held or 'no alias'}"


# --------------------------------------------------------------------------- on a real MLflow store


def minute(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def test_training_the_gate_and_a_rollback_write_and_rewrite_the_version_descriptions(home):
    from pitlake.registry.promote import promote
    from pitlake.training.train import train

    frame, truth = synthetic()
    write_training_set(home, frame, "ts", truth=truth)
    client = client_for(home)

    def description(version: int) -> str:
        return client.get_model_version(MODEL, str(version)).description

    def tags(version: int) -> dict[str, str]:
        return client.get_model_version(MODEL, str(version)).tags

    first = train(home, training_set_id="ts", feature_columns=["count_page_views_7d", "segment", "tenure_days"])
    t1 = tags(1)
    roc1, floor, ceiling = first.metrics["roc_auc"], first.quality_floor, first.ceiling_auc
    v1 = description(1).splitlines()
    assert v1[:4] == [
        "### purchase_propensity v1 · champion",
        "Predicts `label` per `customer_id` at `label_time`: *Will a customer who visits the shop buy within the next "
        "7 days?* (use case `purchase_propensity`).",
        "",
        f"- **Status:** `champion` since {minute(t1['promotion.at'])}, by the promotion gate; the first champion.",
    ]
    assert v1[4] == (
        f"- **Gate:** passed on {minute(t1['gate.decided_at'])} → promoted to champion: ROC AUC {roc1:.4f} ≥ floor "
        f"{floor:.4f}; no leakage suspected."
    )
    assert v1[5] == (
        f"- **Data:** `training_sets.purchase_propensity` Delta v0 (training set `ts`: {len(frame):,} rows, "
        f"{int(frame['label'].sum()):,} positive, label dates 2026-01-01..2026-02-09); inputs "
        "features.customer_activity v6, features.customer_profile v2, labels.purchase_propensity v4."
    )
    assert v1[6].startswith(f"- **Model:** `{first.selected_model}` (best of 2 by evaluation ROC AUC) on 3 features; ")
    assert f"| ROC AUC | {roc1:.4f} | {ceiling:.4f} | {floor:.4f} |" in v1

    # A noise-only model: the real MLflow messages of every failed check, said in words.
    worse = train(home, training_set_id="ts", feature_columns=["tenure_days"])
    t2 = tags(2)
    assert not worse.gate_passed and t2["gate.outcome"] == "failed"  # the tags stay
    roc2, pr2 = worse.metrics["roc_auc"], worse.metrics["pr_auc"]
    c_roc, c_pr = float(t2["gate.champion_roc_auc"]), float(t2["gate.champion_pr_auc"])
    v2 = description(2)
    assert v2.splitlines()[0] == "### purchase_propensity v2 · challenger"
    assert status_line(v2) == "`challenger`, not champion (v1 is)."
    assert gate_line(v2) == (
        f"failed on {minute(t2['gate.decided_at'])} → kept as challenger (v1 stayed champion), because ROC AUC "
        f"{roc2:.4f} is below the floor {floor:.4f}; ROC AUC {roc2:.4f} does not beat v1's {c_roc:.4f} on the same "
        f"rows by 0.002; PR AUC {pr2:.4f} is below v1's {c_pr:.4f} − 0.01."
    )

    better = train(home, training_set_id="ts")
    assert better.gate_passed and better.aliases == {"champion": 3, "previous": 1}
    t3 = tags(3)
    c_roc, c_pr = float(t3["gate.champion_roc_auc"]), float(t3["gate.champion_pr_auc"])
    v3 = description(3)
    at = minute(t3["promotion.at"])
    assert status_line(v3) == f"`champion` since {at}, by the promotion gate; previously v1, now `previous`."
    assert gate_line(v3) == (
        f"passed on {minute(t3['gate.decided_at'])} → promoted to champion, replacing v1: ROC AUC "
        f"{better.metrics['roc_auc']:.4f} ≥ floor {floor:.4f}; beats v1's {c_roc:.4f} on the same rows by ≥ 0.002; "
        f"PR AUC {better.metrics['pr_auc']:.4f} ≥ v1's {c_pr:.4f} − 0.01; no leakage suspected."
    )
    assert (
        f"| ROC AUC | {better.metrics['roc_auc']:.4f} | {c_roc:.4f} | {ceiling:.4f} | {floor:.4f} |" in v3.splitlines()
    )
    assert status_line(description(1)) == (
        f"`previous`, the rollback target: champion until {at}, when v3 replaced it (by the promotion gate)."
    )
    assert description(2).splitlines()[0] == "### purchase_propensity v2 · no alias"  # the challenger moved to v3
    assert status_line(description(2)) == "no alias: not served."

    promote(home, MODEL, 1, "champion", reason="v3 regressed in the shop", actor="alice")
    at = minute(tags(1)["promotion.at"])
    assert description(1).splitlines()[0] == "### purchase_propensity v1 · champion"
    assert status_line(description(1)) == (
        f"`champion` since {at}, by alice: v3 regressed in the shop; previously v3, now `previous`."
    )
    assert status_line(description(3)) == (
        f"`previous`, the rollback target: champion until {at}, when v1 replaced it (by alice: v3 regressed in the "
        "shop)."
    )
    assert gate_line(description(1)) == gate_line("\n".join(v1))  # the gate's why does not change with the alias
    assert tags(1)["gate.outcome"] == "passed" and tags(3)["gate.champion_version"] == "1"


def test_a_version_not_trained_by_pitlake_keeps_its_own_description(home):
    from pitlake.registry.promote import promote

    client = client_for(home)
    client.create_registered_model(MODEL)
    source = home.home / "model"
    source.mkdir(parents=True)
    for text in ("imported from the old platform", "hand-written notes"):
        client.create_model_version(MODEL, source=str(source), description=text)
    promote(home, MODEL, 1, "champion", force=True, reason="bootstrap", actor="erin")
    promote(home, MODEL, 2, "champion", force=True, reason="newer", actor="erin")
    assert [client.get_model_version(MODEL, v).description for v in ("1", "2")] == [
        "imported from the old platform",
        "hand-written notes",
    ]
