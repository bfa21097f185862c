"""The promotion gate of a ranking model (a recommender): its primary metric (NDCG@10) decides.

On the challenger's own evaluation queries (the champion re-scored on the same candidates):

1. floors: no ``suspected_leakage`` (above the ground-truth ceiling by more than its tolerance), and
   the metric at least ``quality_floor``: the popularity baseline's on the same queries;
2. against the current champion (if any): the metric at least the champion's + :data:`MARGIN`;
3. the aliases then move as for any model (:func:`pitlake.registry.promote.apply_gate`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pitlake.core.dates import utc_now
from pitlake.lineage.manifest import QualityRecord
from pitlake.registry.decision import decision_tags, tag_number

MARGIN = 0.002


@dataclass(frozen=True)
class RankingGateDecision:
    passed: bool
    floor_passed: bool
    reasons: tuple[str, ...]
    model: str
    candidate_version: int
    metric: str
    candidate_value: float
    champion_version: int | None
    champion_value: float | None  # re-scored on the candidate's evaluation queries
    quality_floor: float
    floor_source: str
    suspected_leakage: bool
    margin: float
    decided_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def tags(self) -> dict[str, str]:
        return decision_tags(self) | {
            "gate.metric": self.metric,
            f"gate.{self.metric}": tag_number(self.candidate_value),
            f"gate.champion_{self.metric}": tag_number(self.champion_value),
        }


def decide(
    name: str,
    version: int,
    metric: str,
    value: float,
    quality: QualityRecord,
    champion_version: int | None,
    champion: float | str | None,
) -> RankingGateDecision:
    """The decision for ``version`` scoring ``value``; ``champion`` is the champion's re-scored value, or why
    it could not be re-scored (None without a champion). Changes nothing."""
    floor = float(quality.quality_floor)
    reasons = [f"suspected leakage: {r}" for r in quality.leakage_reasons]
    if value < floor:
        reasons.append(f"{metric} {value:.4f} is below the floor {floor:.4f} ({quality.floor_source})")
    floor_passed = value >= floor and not quality.suspected_leakage
    champion_value: float | None = None
    if isinstance(champion, str):
        reasons.append(champion + "; promote by hand if intended")
    elif champion is not None:
        champion_value = float(champion)
        if value < champion_value + MARGIN:
            reasons.append(
                f"{metric} {value:.4f} does not beat champion v{champion_version}'s {champion_value:.4f} on the same "
                f"queries by {MARGIN:g}"
            )
    return RankingGateDecision(
        passed=not reasons, floor_passed=floor_passed, reasons=tuple(reasons), model=name, candidate_version=version,
        metric=metric, candidate_value=float(value), champion_version=champion_version, champion_value=champion_value,
        quality_floor=floor, floor_source=quality.floor_source, suspected_leakage=quality.suspected_leakage,
        margin=MARGIN, decided_at=utc_now().isoformat(),
    )  # fmt: skip
