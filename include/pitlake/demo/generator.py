"""Synthetic source: an online shop's event stream and customer-profile changes.

Deterministic from a seed: day D's files depend only on (seed, customers, epoch, D), so any
day can be generated alone, in any order, and always comes out byte-identical. Each customer
has a latent purchase propensity that drives how often they visit, add to cart and buy; it is
written to a separate ground-truth table for evaluation only (never a feature).

Defects are injected at ``defect_rate`` (a fraction of the day's event lines), split evenly over
the kinds in :data:`EVENT_DEFECTS`, the way real feeds have them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from pitlake.demo.config import DemoConfig, iso_instant
from pitlake.demo.products import ProductPicker
from pitlake.sources.vocabulary import CATEGORIES, COUNTRIES, LOYALTY_TIERS, SEGMENTS

__all__ = ["EVENT_DEFECTS", "DemoConfig", "generate_customers", "generate_events", "iso_instant", "write_day"]

EVENT_DEFECTS = (
    "malformed_json",
    "missing_customer_id",
    "unparseable_event_time",
    "negative_amount",
    "unknown_event_type",
    "duplicate_event_id",
    "late_event",
)
CUSTOMER_DEFECTS = ("malformed_json", "missing_customer_id", "unknown_loyalty_tier")
# Weekly seasonality, Monday first: weekends are busier.
WEEKDAY_FACTOR = (0.9, 0.85, 0.9, 0.95, 1.05, 1.25, 1.2)
LINES_PER_FILE = 200_000
TRUTH_PRODUCTS = 10  # products per customer and day in the ground truth of what a purchase buys


@dataclass(frozen=True)
class DayReport:
    day: date
    event_lines: int
    customer_lines: int
    defects: dict[str, int]
    files: list[str]


def customer_id(index: int) -> str:
    return f"c{index:06d}"


def _customer_traits(cfg: DemoConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([cfg.seed, 0])
    n = cfg.customers
    propensity = rng.beta(1.3, 9.0, n)  # chance that a visit ends in a purchase
    activity = rng.gamma(2.0, cfg.sessions_per_day / 2.0, n) * (0.6 + 2.0 * propensity)
    return {
        "propensity": propensity,
        "activity": activity,
        "favourite": rng.integers(0, len(CATEGORIES), n),
        "signup_offset": rng.integers(1, 3 * 365, n),
        "segment": rng.integers(0, len(SEGMENTS), n),
        "country": rng.integers(0, len(COUNTRIES), n),
        "tier": np.minimum((propensity * 12).astype(int), len(LOYALTY_TIERS) - 1),
    }


def _day_rng(cfg: DemoConfig, day: date, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, day.toordinal(), stream])


def profiles_as_of(cfg: DemoConfig, day: date) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Profile state at the end of ``day`` and the mask of customers whose profile changed that day."""
    traits = _customer_traits(cfg)
    state = {k: traits[k].copy() for k in ("segment", "country", "tier")}
    changed = np.ones(cfg.customers, dtype=bool)  # the epoch day carries every profile
    # A loyalty tier is earned by spending: it moves now and then, but stays within one step of the
    # tier the customer's propensity earns (an unbounded random walk would wash the signal out).
    low = np.maximum(traits["tier"] - 1, 0)
    high = np.minimum(traits["tier"] + 1, len(LOYALTY_TIERS) - 1)
    d = cfg.epoch + timedelta(days=1)
    while d <= day:
        rng = _day_rng(cfg, d, 2)
        u = rng.random((3, cfg.customers))
        tier_move = np.where(u[0] < 0.003, 1, 0) - np.where(u[0] > 0.9985, 1, 0)
        tier = np.clip(state["tier"] + tier_move, low, high)
        tier_move = tier - state["tier"]
        state["tier"] = tier
        new_segment = rng.integers(0, len(SEGMENTS), cfg.customers)
        state["segment"] = np.where(u[1] < 0.003, new_segment, state["segment"])
        new_country = rng.integers(0, len(COUNTRIES), cfg.customers)
        state["country"] = np.where(u[2] < 0.001, new_country, state["country"])
        changed = (tier_move != 0) | (u[1] < 0.003) | (u[2] < 0.001)
        d += timedelta(days=1)
    return state, changed


def generate_events(cfg: DemoConfig, day: date) -> tuple[list[str], dict[str, int], list[dict[str, object]]]:
    """One day's event lines (JSON Lines), the injected defect counts, and the ground truth rows."""
    traits = _customer_traits(cfg)
    rng = _day_rng(cfg, day, 1)
    products = ProductPicker(cfg, day, traits["favourite"])
    season = WEEKDAY_FACTOR[day.weekday()]
    n = cfg.customers
    sessions = rng.poisson(traits["activity"] * season)
    midnight = datetime.combine(day, time.min)
    records: list[dict[str, object]] = []
    seq = 0
    for cust in (int(c) for c in np.nonzero(sessions)[0]):
        p = traits["propensity"][cust]
        for s in range(int(sessions[cust])):
            start = midnight + timedelta(seconds=float(rng.uniform(0, 86_000)))
            session_id = f"s{day:%Y%m%d}-{cust:06d}-{s}"
            n_views = 1 + int(rng.poisson(2 + 6 * p))
            t = start
            for _ in range(n_views):
                viewed = int(traits["favourite"][cust] if rng.random() < 0.5 else rng.integers(0, len(CATEGORIES)))
                product = products.pick(cust, viewed, with_taste=False)
                records.append(_event(day, seq, "page_view", cust, t, None, CATEGORIES[viewed], session_id, product))
                seq += 1
                t += timedelta(seconds=float(rng.exponential(40)))
            if rng.random() < min(0.95, 2.5 * p + 0.05):
                category = CATEGORIES[traits["favourite"][cust]]
                product = products.pick(cust, int(traits["favourite"][cust]), with_taste=True)
                records.append(_event(day, seq, "add_to_cart", cust, t, None, category, session_id, product))
                seq += 1
                t += timedelta(seconds=float(rng.exponential(60)))
                if rng.random() < min(0.95, p / min(0.95, 2.5 * p + 0.05)):
                    amount = round(float(rng.lognormal(3.2 + 2 * p, 0.6)), 2)
                    records.append(_event(day, seq, "purchase", cust, t, amount, category, session_id, product))
                    seq += 1
    # Events can spill past midnight when a session starts late; they belong to the next day.
    next_midnight = midnight + timedelta(days=1)
    records = [r for r in records if str(r["event_time"]) < iso_instant(next_midnight)]
    lines = [json.dumps(r, separators=(",", ":")) for r in records]
    lines, defects = _inject_event_defects(cfg, day, rng, records, lines)
    # Ground truth: the expected number of purchases per customer on this day, and the products a
    # purchase of theirs goes to, most likely first (the TRUTH_PRODUCTS likeliest; evaluation only).
    expected = traits["activity"] * season * traits["propensity"]
    truth = [
        {
            "customer_id": customer_id(i),
            "date": day.isoformat(),
            "propensity": float(traits["propensity"][i]),
            "expected_purchases": round(float(expected[i]), 6),
            "products": _likeliest(products.purchase_probabilities(i, int(traits["favourite"][i]))),
        }
        for i in range(n)
    ]
    return lines, defects, truth


def _likeliest(probabilities: dict[str, float]) -> list[list[object]]:
    """The :data:`TRUTH_PRODUCTS` likeliest products as ``[product_id, probability]``, likeliest first."""
    ranked = sorted(probabilities.items(), key=lambda kv: (-kv[1], kv[0]))[:TRUTH_PRODUCTS]
    return [[pid, round(q, 6)] for pid, q in ranked]


def _event(
    day: date,
    seq: int,
    kind: str,
    cust: int,
    ts: datetime,
    amount: float | None,
    category: str,
    session_id: str,
    product: str | None,
) -> dict[str, object]:
    return {
        "event_id": f"e{day:%Y%m%d}-{seq:08d}",
        "event_type": kind,
        "customer_id": customer_id(int(cust)),
        "event_time": iso_instant(ts),
        "amount": amount,
        "category": category,
        "product_id": product,  # what was viewed, carted or bought (the catalog's id; the purchase: the cart's)
        "session_id": session_id,
    }


def _inject_event_defects(
    cfg: DemoConfig, day: date, rng: np.random.Generator, records: list[dict[str, object]], lines: list[str]
) -> tuple[list[str], dict[str, int]]:
    per_kind = math.floor(len(lines) * cfg.defect_rate / len(EVENT_DEFECTS))
    defects = {kind: 0 for kind in EVENT_DEFECTS}
    if per_kind == 0:
        return lines, defects
    chosen = rng.choice(len(lines), size=per_kind * (len(EVENT_DEFECTS) - 2), replace=False)
    chosen_set = {int(i) for i in chosen}
    purchases = [i for i, r in enumerate(records) if r["event_type"] == "purchase" and i not in chosen_set]
    for k, kind in enumerate(
        ("malformed_json", "missing_customer_id", "unparseable_event_time", "unknown_event_type", "late_event")
    ):
        for i in chosen[k * per_kind : (k + 1) * per_kind]:
            rec = dict(records[i])
            if kind == "malformed_json":
                lines[i] = lines[i][: len(lines[i]) // 2]
                continue
            if kind == "missing_customer_id":
                rec.pop("customer_id")
            elif kind == "unparseable_event_time":
                rec["event_time"] = "yesterday at noon"
            elif kind == "unknown_event_type":
                rec["event_type"] = "wishlist_add"
            elif kind == "late_event":
                lag = int(rng.integers(1, 3))
                rec["event_time"] = iso_instant(datetime.combine(day - timedelta(days=lag), time(12, 0, 0)))
                rec["event_id"] = f"{rec['event_id']}-late"
            lines[i] = json.dumps(rec, separators=(",", ":"))
            defects[kind] += 1
        if kind == "malformed_json":
            defects[kind] = per_kind
    for i in purchases[:per_kind]:
        rec = dict(records[i])
        rec["amount"] = -abs(float(rec["amount"] or 1.0))
        lines[i] = json.dumps(rec, separators=(",", ":"))
        defects["negative_amount"] += 1
    # Upstream retries resend whole lines: an exact duplicate of an accepted-looking line.
    touched = chosen_set | set(purchases[:per_kind])
    untouched = [i for i in range(len(lines)) if i not in touched]
    for i in rng.choice(untouched, size=min(per_kind, len(untouched)), replace=False):
        lines.append(lines[i])
        defects["duplicate_event_id"] += 1
    return lines, defects


def generate_customers(cfg: DemoConfig, day: date) -> tuple[list[str], dict[str, int]]:
    """Profile change records for ``day`` (every customer on the epoch day)."""
    if day < cfg.epoch:
        return [], {kind: 0 for kind in CUSTOMER_DEFECTS}
    traits = _customer_traits(cfg)
    state, changed = profiles_as_of(cfg, day)
    rng = _day_rng(cfg, day, 3)
    midnight = datetime.combine(day, time.min)
    lines = []
    for i in np.nonzero(changed)[0]:
        updated = midnight + timedelta(seconds=float(rng.uniform(0, 86_399)))
        if day == cfg.epoch:
            updated = midnight  # the initial snapshot is valid from the epoch's first instant
        lines.append(
            json.dumps(
                {
                    "customer_id": customer_id(int(i)),
                    "segment": SEGMENTS[state["segment"][i]],
                    "country": COUNTRIES[state["country"][i]],
                    "loyalty_tier": LOYALTY_TIERS[state["tier"][i]],
                    "signup_date": (cfg.epoch - timedelta(days=int(traits["signup_offset"][i]))).isoformat(),
                    "updated_at": iso_instant(updated),
                },
                separators=(",", ":"),
            )
        )
    defects = {kind: 0 for kind in CUSTOMER_DEFECTS}
    per_kind = math.floor(len(lines) * cfg.defect_rate / len(CUSTOMER_DEFECTS))
    if per_kind:
        chosen = rng.choice(len(lines), size=per_kind * len(CUSTOMER_DEFECTS), replace=False)
        for k, kind in enumerate(CUSTOMER_DEFECTS):
            for i in chosen[k * per_kind : (k + 1) * per_kind]:
                rec = json.loads(lines[i])
                if kind == "malformed_json":
                    lines[i] = lines[i][:-7]
                elif kind == "missing_customer_id":
                    rec["customer_id"] = None
                    lines[i] = json.dumps(rec, separators=(",", ":"))
                else:
                    rec["loyalty_tier"] = "platinum-plus"
                    lines[i] = json.dumps(rec, separators=(",", ":"))
                defects[kind] += 1
    return lines, defects


def _write_lines(folder: Path, lines: list[str]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl"):
        old.unlink()
    written = []
    for part, offset in enumerate(range(0, max(len(lines), 1), LINES_PER_FILE)):
        path = folder / f"part-{part:04d}.jsonl"
        chunk = lines[offset : offset + LINES_PER_FILE]
        path.write_text("".join(line + "\n" for line in chunk))
        written.append(str(path))
    return written


def write_day(cfg: DemoConfig, landing: Path, day: date) -> DayReport:
    """Write one day's landing files (events, customers, ground truth); replaces that day's files."""
    event_lines, event_defects, truth = generate_events(cfg, day)
    customer_lines, customer_defects = generate_customers(cfg, day)
    files = _write_lines(landing / "events" / f"date={day.isoformat()}", event_lines)
    files += _write_lines(landing / "customers" / f"date={day.isoformat()}", customer_lines)
    truth_dir = landing / "ground_truth" / f"date={day.isoformat()}"
    files += _write_lines(truth_dir, [json.dumps(t, separators=(",", ":")) for t in truth])
    defects = {f"events.{k}": v for k, v in event_defects.items()}
    defects.update({f"customers.{k}": v for k, v in customer_defects.items()})
    return DayReport(day, len(event_lines), len(customer_lines), defects, files)
