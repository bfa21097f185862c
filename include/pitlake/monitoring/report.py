"""The monitoring report: the verdict line and one self-contained HTML page (inline CSS and SVG) per day.

:func:`verdict` words a result's breach reasons and its one-line message; :func:`render` turns a
:class:`~pitlake.monitoring.monitor.MonitorResult` (as its ``to_dict()``) into HTML; :func:`publish`
writes it with the result's JSON under ``$PITLAKE_HOME/monitoring/reports`` and logs both to the
champion's MLflow run with the ``monitoring.*`` tags.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitlake.core import html as html_report
from pitlake.core.html import fmt as _fmt
from pitlake.core.html import table as _table
from pitlake.core.settings import Settings
from pitlake.labels.build import HORIZON
from pitlake.monitoring.metrics import psi_label

if TYPE_CHECKING:
    from mlflow import MlflowClient

ARTIFACT_DIR = "monitoring"
RETRAIN = "train_model is triggered to train a challenger on fresh data"
CSS = html_report.CSS


def reports_dir(settings: Settings, use_case: str) -> Path:
    return settings.monitoring_dir / "reports" / use_case


def calibration_svg(bins: list[dict[str, Any]], size: int = 320) -> str:
    """The calibration curve (mean score vs observed rate per non-empty bin, dots sized by count) as SVG."""
    left, top, inner = 45, 15, size - 60
    bottom = top + inner

    def xy(px: float, py: float) -> tuple[float, float]:
        return left + px * inner, top + (1 - py) * inner

    used = [b for b in bins if b.get("count")]
    biggest = max((b["count"] for b in used), default=1)
    points = [(*xy(b["mean_predicted"], b["observed_rate"]), b) for b in used]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" '
        'aria-label="calibration curve">',
        f'<rect x="{left}" y="{top}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>',
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#aaa" stroke-dasharray="4 3"/>'.format(*xy(0, 0), *xy(1, 1)),
    ]
    for tick in (0.0, 0.5, 1.0):
        x, y = xy(tick, tick)
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" font-size="10" text-anchor="middle">{tick:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{tick:g}</text>')
    middle = top + inner / 2
    parts.append(
        f'<text x="{left + inner / 2}" y="{bottom + 32}" font-size="11" text-anchor="middle">'
        "mean predicted score</text>"
    )
    parts.append(
        f'<text x="14" y="{middle}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle})">observed positive rate</text>'
    )
    if len(points) > 1:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
    for x, y, b in points:
        radius = 2.5 + 5.5 * (b["count"] / biggest) ** 0.5
        title = f"{b['lower']:.1f}-{b['upper']:.1f}: {b['count']} predictions"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="#1f77b4"><title>{title}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def verdict(r: dict[str, Any]) -> tuple[list[str], str]:
    """The breach reasons and the one-line message of a monitoring result (``MonitorResult.to_dict()``)."""
    n, window, threshold = r["evaluated"], f"{r['eval_start']}..{r['eval_end']}", r["psi_threshold"]
    auc, floor = (r.get("realized") or {}).get("roc_auc"), r["floor"]
    reasons: list[str] = []
    if r["evaluation"] == "evaluated" and floor is not None and auc < floor:
        reasons.append(f"realized ROC AUC {auc:.3f} < floor {floor:.3f} over {n} matured predictions of {window}")
    drifted = sorted(((v, f) for f, v in r["psi"].items() if v > threshold), reverse=True)
    reasons += [f"PSI {f} {v:.2f} > {threshold:.2f}" for v, f in drifted]
    head = f"{r['model_name']} v{r['model_version']}"
    if reasons:
        return reasons, f"{head}: {'; '.join(reasons)} — {RETRAIN}"
    if r["evaluation"] == "evaluated":
        bar = f">= floor {floor:.3f}" if floor is not None else "(no floor recorded)"
        quality = f"realized ROC AUC {auc:.3f} {bar} over {n} matured predictions of {window}"
    elif r["evaluation"] == "insufficient":
        quality = (
            f"realized ROC AUC not evaluated: {n} matured predictions of {window} with "
            f"{r['realized'].get('positives')} positives (needs {r['min_eval_predictions']} and both classes)"
        )
    elif r["evaluation"] == "champion_not_served":
        quality = f"v{r['model_version']} has no predictions in the look-back window (other versions do)"
    else:
        quality = (
            f"no matured predictions yet (outcomes observed until {r['observed_until']}, horizon {HORIZON.days} days)"
        )
    if r["psi"]:
        worst = max(r["psi"], key=lambda f: r["psi"][f])
        drift = (
            f"max PSI {worst} {r['psi'][worst]:.2f} <= {threshold:.2f} over {r['drift_rows']} served vectors "
            f"of {r['drift_start']}..{r['drift_end']}"
        )
    else:
        drift = f"nothing served by v{r['model_version']} on {r['drift_start']}..{r['drift_end']} to check drift"
    return [], f"{head}: healthy: {quality}; {drift}"


def render(result: dict[str, Any]) -> str:
    """The report of one monitoring run as a self-contained HTML page."""
    r, realized = result, result.get("realized") or {}
    name = f"{r['model_name']} v{r['model_version']}"
    verdict = "breached" if r["breached"] else "healthy"
    model_rows = [
        ("registered model", name),
        ("MLflow run", r["run_id"]),
        ("training set", f"{r['training_set_id']} (Delta version {r['training_set_version']})"),
        ("features", ", ".join(r["features"])),
        ("ROC AUC floor", f"{_fmt(r['floor'])} ({r['floor_source']})"),
    ]
    windows = [
        ("monitored day", r["day"]),
        ("evaluation window", f"{r['eval_start']}..{r['eval_end']}" if r["eval_end"] else f"none ({r['evaluation']})"),
        ("outcomes observed until", f"{r['observed_until']} (bronze.events version {r['bronze_version']})"),
        ("drift window", f"{r['drift_start']}..{r['drift_end']}"),
    ]
    counts = [
        ("matured predictions evaluated", r["evaluated"]),
        ("other versions' predictions left out", r["other_versions_excluded"]),
        ("predictions not matured yet", r["pending"]),
        ("duplicate request ids dropped", r["duplicates_dropped"]),
        ("vectors served in the drift window", r["drift_rows"]),
        ("share found in the online store", r["found_rate"]),
    ]
    quality = [
        ("ROC AUC", realized.get("roc_auc"), r["training_roc_auc"], r["floor"]),
        ("Brier score", realized.get("brier"), None, None),
        ("expected calibration error", realized.get("ece"), None, None),
        ("positive rate", realized.get("positive_rate"), None, None),
        ("mean score", realized.get("mean_score"), None, None),
        ("positives / n", f"{realized.get('positives', '–')} / {realized.get('n', '–')}", None, None),
    ]
    auc, floor = realized.get("roc_auc"), r["floor"]
    auc_bad = r["evaluation"] == "evaluated" and floor is not None and auc is not None and auc < floor
    psi_rows = sorted(r["psi"].items(), key=lambda kv: -kv[1])
    cal_rows = [(f"{b['lower']:.1f}–{b['upper']:.1f}", b["count"], b["mean_predicted"], b["observed_rate"])
                for b in r["calibration"]]  # fmt: skip
    sections = [
        f"<h1>Monitoring: {escape(name)} on {escape(r['day'])}</h1>",
        f'<p class="verdict {verdict}"><strong>{verdict}</strong>: {escape(r["message"])}</p>',
        "<h2>Model</h2>" + _table(["", ""], model_rows),
        "<h2>Dates</h2>" + _table(["", ""], windows),
        "<h2>Counts</h2>" + _table(["", ""], counts),
        "<h2>Realized quality</h2>"
        + _table(["metric", "realized", "at training (evaluation)", "floor"], quality, [auc_bad]),
        "<h2>Calibration</h2>"
        + (calibration_svg(r["calibration"]) if r["evaluated"] else "<p>no matured predictions</p>")
        + _table(["score bin", "count", "mean score", "observed rate"], cal_rows),
        f"<h2>Drift (PSI per feature, threshold {r['psi_threshold']:.2f})</h2>"
        + (
            _table(
                ["feature", "kind", "PSI", "reading"],
                [(f, r["feature_kinds"].get(f, ""), v, psi_label(v)) for f, v in psi_rows],
                [v > r["psi_threshold"] for _, v in psi_rows],
            )
            if psi_rows
            else "<p>nothing served in the drift window</p>"
        ),
        "<p><small>PSI = Σ (cur − ref) · ln(cur / ref) over the reference's quantile bins (numeric) or "
        "categories (categorical), missing values a bin of their own; &lt; 0.1 stable, 0.1–0.2 moderate, "
        "&gt; 0.2 significant. The reference is the champion's training set.</small></p>",
    ]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(name)} {escape(r["day"])}</title>'
        f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n"
    )


def publish(settings: Settings, client: MlflowClient, result: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``<day>.html`` and ``<day>.json`` (``result`` with their paths filled in), log both under
    ``monitoring/`` of the champion's run and set its ``monitoring.*`` tags; returns the two paths."""
    folder = reports_dir(settings, result["use_case"])
    folder.mkdir(parents=True, exist_ok=True)
    html_path, json_path = folder / f"{result['day']}.html", folder / f"{result['day']}.json"
    result = {**result, "report_html": str(html_path), "report_json": str(json_path)}
    html_path.write_text(render(result))
    json_path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    for path in (html_path, json_path):
        client.log_artifact(result["run_id"], str(path), ARTIFACT_DIR)
    auc = (result.get("realized") or {}).get("roc_auc")
    tags = {
        "monitoring.last_report": str(html_path),
        "monitoring.last_day": result["day"],
        "monitoring.realized_roc_auc": "none" if auc is None else f"{auc:.6f}",
        "monitoring.breached": str(bool(result["breached"])).lower(),
    }
    for key, value in tags.items():
        client.set_tag(result["run_id"], key, value)
    return html_path, json_path
