"""What every promotion gate's decision shares: the protocol :func:`pitlake.registry.promote.apply_gate`
reads, and the ``gate.*`` tags common to the classification gate and the ranking gate."""

from __future__ import annotations

from typing import Any, Protocol


class Decision(Protocol):
    """What ``apply_gate`` needs of a gate's decision (``GateDecision``, or a ranking model's)."""

    @property
    def passed(self) -> bool: ...

    @property
    def candidate_version(self) -> int: ...

    def tags(self) -> dict[str, str]: ...


def tag_number(value: float | None) -> str:
    return "none" if value is None else f"{value:.6f}"


def decision_tags(decision: Any) -> dict[str, str]:
    """The ``gate.*`` tags every gate's decision writes (its outcome, floor, leakage, champion, margin, time);
    each gate adds its metrics'."""
    d = decision
    return {
        "gate.outcome": "passed" if d.passed else "failed",
        "gate.floor_passed": str(d.floor_passed).lower(),
        "gate.reasons": " | ".join(d.reasons) if d.reasons else "all checks passed",
        "gate.quality_floor": tag_number(d.quality_floor),
        "gate.floor_source": d.floor_source,
        "gate.suspected_leakage": str(d.suspected_leakage).lower(),
        "gate.champion_version": str(d.champion_version) if d.champion_version else "none",
        "gate.margin": tag_number(d.margin),
        "gate.decided_at": d.decided_at,
    }
