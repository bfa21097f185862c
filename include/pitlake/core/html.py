"""Self-contained HTML reports (inline CSS, no external asset): the style and the table every report uses."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 60em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
.verdict { padding: .8em 1em; border-radius: 4px; }
.breached { background: #fde2e1; border-left: 6px solid #c0392b; }
.healthy { background: #e3f4e8; border-left: 6px solid #2e8b57; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fde2e1; }
tr.best td { background: #e3f4e8; font-weight: 600; }
"""


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: floats to ``digits`` places, None as a dash."""
    if value is None:
        return "\u2013"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(
    header: Iterable[str],
    rows: Iterable[Iterable[Any]],
    bad: Iterable[bool] | None = None,
    best: Iterable[bool] | None = None,
) -> str:
    """An HTML table; numbers right-aligned, rows flagged ``bad`` (red) or ``best`` (green)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    bad_flags, best_flags = list(bad or []), list(best or [])
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{escape(fmt(v))}</td>' if isinstance(v, int | float) else f"<td>{escape(fmt(v))}</td>"
            for v in row
        )
        cls = ""
        if i < len(bad_flags) and bad_flags[i]:
            cls = ' class="bad"'
        elif i < len(best_flags) and best_flags[i]:
            cls = ' class="best"'
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
