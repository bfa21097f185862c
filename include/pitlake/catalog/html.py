"""The pages' shared HTML: the layout (Airflow 3's fonts, greys and blue accents, inline CSS, no script and
nothing fetched from elsewhere), escaping, tables, badges and the value formats every page uses.

Every text goes through :func:`esc` unless it is :class:`Html` already, so a value read from a table, a
tag or a record can never inject markup.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote


class Html(str):
    """Markup that is already safe (built by these helpers from escaped parts)."""


def esc(value: Any) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    return Html(esc(sep).join(esc(p) for p in parts))


def link(href: str, text: Any, *, external: bool = False, top: bool = False, title: str | None = None) -> Html:
    """``external``: a new tab (MLflow); ``top``: the whole window, out of the Airflow UI's frame (Airflow's pages)."""
    target = ' target="_blank" rel="noopener"' if external else ' target="_top"' if top else ""
    hint = f' title="{esc(title)}"' if title else ""
    return Html(f'<a href="{esc(href)}"{target}{hint}>{esc(text)}</a>')


MLFLOW_HINT = "opens MLflow in a new tab (inside the Airflow UI's frame: right-click, Open link in new tab)"


def airflow_run_link(airflow_base: str | None, dag_id: str, run_id: str, text: str) -> Html:
    """A link to the run's page in Airflow's UI, out of the frame; none when ``airflow_base`` is None (the page
    is shown inside the Airflow UI, whose frame may not navigate the window)."""
    if airflow_base is None:
        return Html("")
    return link(f"{airflow_base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}", text, top=True)


def code(text: Any) -> Html:
    return Html(f"<code>{esc(text)}</code>")


def muted(text: Any) -> Html:
    return Html(f'<span class="muted">{esc(text)}</span>')


BADGE_KINDS = ("success", "failed", "warning", "neutral", "brand")


def badge(text: Any, kind: str = "neutral") -> Html:
    return Html(f'<span class="badge {kind if kind in BADGE_KINDS else "neutral"}">{esc(text)}</span>')


def outcome_badge(success: bool | None, warnings: int = 0) -> Html:
    if success is None:
        return badge("not validated")
    if not success:
        return badge("failed", "failed")
    return (
        badge(f"passed, {warnings} warning{'s' if warnings != 1 else ''}", "warning")
        if warnings
        else badge("passed", "success")
    )


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, classes: Sequence[str] = (), empty: str = ""
) -> Html:
    """A compact table; ``classes[i]`` styles column i (``num`` right-aligns); a row's cells are escaped unless Html.

    A row may end with a dict ``{"class": "..."}`` naming the row's class (``fail``, ``warn``)."""
    head = "".join(f"<th{_cls(c)}>{esc(h)}</th>" for h, c in zip(headers, _pad(classes, len(headers)), strict=True))
    body = []
    for row in rows:
        cells = list(row)
        row_class = ""
        if cells and isinstance(cells[-1], dict):
            row_class = _cls(cells.pop()["class"])
        tds = "".join(f"<td{_cls(c)}>{esc(v)}</td>" for v, c in zip(cells, _pad(classes, len(cells)), strict=True))
        body.append(f"<tr{row_class}>{tds}</tr>")
    if not body:
        if not empty:
            return Html("")
        body.append(f'<tr><td class="muted" colspan="{len(headers)}">{esc(empty)}</td></tr>')
    return Html(
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _cls(name: str) -> str:
    return f' class="{esc(name)}"' if name else ""


def _pad(classes: Sequence[str], n: int) -> list[str]:
    return [*classes[:n], *([""] * (n - len(classes[:n])))]


def fields(pairs: Iterable[tuple[str, Any]]) -> Html:
    """A definition list: label, value."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs)
    return Html(f'<dl class="fields">{items}</dl>')


def section(title: Any, body: Any, *, anchor: str | None = None, aside: Any = "") -> Html:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    side = f'<span class="aside">{esc(aside)}</span>' if aside else ""
    return Html(f'<section class="card"{ident}><h2>{esc(title)}{side}</h2>{esc(body)}</section>')


def notice(text: Any, kind: str = "neutral") -> Html:
    return Html(f'<p class="notice {kind if kind in BADGE_KINDS else "neutral"}">{esc(text)}</p>')


# --------------------------------------------------------------------------- values


def when(value: datetime | date | str | None) -> str:
    """``2026-01-08 00:00 UTC``; naive datetimes are UTC (Delta's and Spark's convention here)."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            parsed: datetime | date = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        parsed = value
    if isinstance(parsed, datetime):
        moment = parsed.astimezone(UTC) if parsed.tzinfo else parsed
        return f"{moment:%Y-%m-%d %H:%M} UTC"
    return parsed.isoformat()


def count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def duration(value: timedelta | None) -> str:
    if value is None:
        return "none (no expiry)"
    days, rest = value.days, value - timedelta(days=value.days)
    if not rest:
        return f"{days} day" if days == 1 else f"{days} days"
    return str(value)


def observed(raw: str | None, width: int = 90) -> str:
    """An observed value as stored (JSON text), shortened for a table cell."""
    if raw is None or raw == "null":
        return "–"
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str, separators=(", ", ": "))
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- the layout

NAV = (("catalog", "Feature catalog"), ("validations", "Validation results"), ("models", "Models"))

# Airflow 3's theme (Chakra UI tokens of its UI bundle): Inter and the system stack, its grey scale,
# blue.600 for links and the active tab, green/red/orange 100/700 for states.
CSS = """
:root{--fg:oklch(0.23185 0.0323 266.44);--muted:oklch(0.45 0.055 251);--bg:#fff;--subtle:oklch(0.985 0.004 253);
--line:oklch(0.915 0.01 253);--line2:oklch(0.955 0.006 253);--link:#2563eb;--ok-bg:#dcfce7;--ok:#116932;
--bad-bg:oklch(0.936 0.032 17.717);--bad:oklch(0.505 0.213 27.518);--warn-bg:oklch(0.961 0.033 82.320);
--warn:oklch(0.47 0.12 58);--brand-bg:#dbeafe;--brand:#173da6;--grey-bg:oklch(0.955 0.006 253)}
@media (prefers-color-scheme:dark){:root{--fg:oklch(0.985 0.004 253);--muted:oklch(0.75 0.025 252);
--bg:oklch(0.18 0.03 251);--subtle:oklch(0.22 0.032 251);--line:oklch(0.35 0.045 251);--line2:oklch(0.28 0.035 251);
--link:#60a5fa;--ok-bg:#042713;--ok:#86efac;--bad-bg:oklch(0.258 0.092 26.042);--bad:oklch(0.808 0.114 19.571);
--warn-bg:oklch(0.27 0.07 60);--warn:oklch(0.857 0.118 76.815);--brand-bg:#14204a;--brand:#a3cfff;
--grey-bg:oklch(0.28 0.035 251)}}
*{box-sizing:border-box}
body{margin:0;padding:12px 20px 32px;background:var(--bg);color:var(--fg);font:14px/1.45 Inter,-apple-system,
BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif,"Apple Color Emoji","Segoe UI Emoji"}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
code,.mono{font:12px SFMono-Regular,Menlo,Monaco,Consolas,"Liberation Mono","Courier New",monospace}
nav{display:flex;gap:4px;border-bottom:1px solid var(--line);margin-bottom:14px}
nav a{padding:8px 12px;color:var(--muted);border-bottom:2px solid transparent;margin-bottom:-1px;font-weight:500}
nav a.active{color:var(--link);border-bottom-color:var(--link)}nav .brand{font-weight:700;color:var(--fg);
padding:8px 12px 8px 0}
h1{font-size:20px;font-weight:600;margin:4px 0 2px}h2{font-size:15px;font-weight:600;margin:0 0 10px}
h3{font-size:13px;font-weight:600;margin:14px 0 6px}
.lead{color:var(--muted);margin:0 0 14px}.muted{color:var(--muted)}.aside{float:right;font-weight:400;font-size:13px}
.card{border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:0 0 14px;background:var(--bg)}
table{border-collapse:collapse;width:100%;font-size:13px;margin:2px 0 6px}
th{text-align:left;font-weight:600;color:var(--muted);background:var(--subtle);border-bottom:1px solid var(--line);
padding:5px 10px;white-space:nowrap}
td{padding:5px 10px;border-bottom:1px solid var(--line2);vertical-align:top}tr:hover td{background:var(--subtle)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.nowrap{white-space:nowrap}
td.wide{min-width:13em}.scroll{overflow-x:auto}
tr.fail td{background:var(--bad-bg)}tr.warn td{background:var(--warn-bg)}
.badge{display:inline-block;padding:0 8px;border-radius:9999px;font-size:12px;font-weight:500;line-height:20px;
white-space:nowrap;background:var(--grey-bg);color:var(--fg)}
.badge.success{background:var(--ok-bg);color:var(--ok)}.badge.failed{background:var(--bad-bg);color:var(--bad)}
.badge.warning{background:var(--warn-bg);color:var(--warn)}.badge.brand{background:var(--brand-bg);color:var(--brand)}
.notice{padding:8px 12px;border-radius:6px;background:var(--subtle);border:1px solid var(--line)}
.notice.failed{background:var(--bad-bg);border-color:transparent}.notice.warning{background:var(--warn-bg);
border-color:transparent}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0 0 8px}
dl.fields dt{color:var(--muted)}dl.fields dd{margin:0}
footer{color:var(--muted);font-size:12px;margin-top:18px}
"""


def page(title: str, body: Any, *, base: str, active: str = "", lead: Any = "", footer: Any = "") -> str:
    """A whole page: the pitlake tabs, the title, one lead line, the body."""
    tabs = "".join(
        f'<a href="{esc(base)}/{key}" class="{"active" if key == active else ""}">{esc(label)}</a>'
        for key, label in NAV
    )
    intro = f'<p class="lead">{esc(lead)}</p>' if lead else ""
    foot = f"<footer>{esc(footer)}</footer>" if footer else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · pitlake</title><style>{CSS}</style></head><body>"
        f'<nav><span class="brand">pitlake</span>{tabs}</nav><main><h1>{esc(title)}</h1>{intro}{esc(body)}</main>'
        f"{foot}</body></html>"
    )
