"""Charts as inline SVG text: horizontal bars and heat grids, drawn by the page's CSS.

Inline SVG in HTML needs no namespace declaration, so a chart names no URL;
colours come as arguments, text is escaped here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

CHAR_WIDTH = 7.2  # px of one character at the charts' 12 px font, roughly
BAR_HEIGHT = 22
BAR_GAP = 10
LIGHT = (244, 246, 251)  # an empty cell


def _text_width(labels: Sequence[str], cap: int) -> float:
    return min(cap, max((len(label) for label in labels), default=0) * CHAR_WIDTH + 12)


def _shorten(label: str, width: float) -> str:
    fits = max(3, int(width / CHAR_WIDTH) - 1)
    return label if len(label) <= fits else label[: fits - 1] + "…"


def bars(
    rows: Sequence[tuple[str, float | None]],
    show: Callable[[float], str],
    colour: str,
    title: str,
    top: float | None = None,
    best: str = "#0f766e",
) -> str:
    """One horizontal bar per (label, value), longest at `top` (default: the largest
    value); the largest value's bar is drawn in `best`; None is drawn as "n/a"."""
    values = [v for _, v in rows if v is not None]
    scale = top if top is not None else max(values, default=0.0)
    winner = max(values, default=None)
    left = _text_width([label for label, _ in rows], 200)
    width, value_room = 540, 70
    span = width - left - value_room
    height = len(rows) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for number, (label, value) in enumerate(rows):
        y = BAR_GAP + number * (BAR_HEIGHT + BAR_GAP)
        middle = y + BAR_HEIGHT / 2 + 4
        parts.append(
            f'<text x="{left - 8:.0f}" y="{middle:.0f}" text-anchor="end" class="axis">'
            f"<title>{escape(label)}</title>{escape(_shorten(label, left - 8))}</text>"
        )
        parts.append(
            f'<rect x="{left}" y="{y}" width="{span}" height="{BAR_HEIGHT}" rx="4" fill="#eef1f6"/>'
        )
        if value is None:
            parts.append(f'<text x="{left + 8}" y="{middle:.0f}" class="muted">n/a</text>')
            continue
        length = span * (value / scale) if scale > 0 else 0.0
        fill = best if value == winner and len(values) > 1 else colour
        parts.append(
            f'<rect x="{left}" y="{y}" width="{max(length, 2):.1f}" height="{BAR_HEIGHT}" rx="4" '
            f'fill="{fill}"/>'
        )
        parts.append(
            f'<text x="{left + span + 8}" y="{middle:.0f}" class="value">'
            f"{escape(show(value))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _mix(colour: tuple[int, int, int], share: float) -> str:
    share = min(max(share, 0.0), 1.0)
    red, green, blue = (round(a + (b - a) * share) for a, b in zip(LIGHT, colour, strict=True))
    return f"rgb({red},{green},{blue})"


def heat_grid(
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Sequence[Sequence[tuple[str, float, tuple[int, int, int]]]],
    title: str,
    row_axis: str,
    column_axis: str,
    cell: int = 0,
) -> str:
    """A grid of cells, each (text, share 0..1, colour): the share of the colour it is
    filled with. Row labels on the left, column labels on top (slanted when long);
    `cell` is a cell's side in px (default: by the number of columns)."""
    cell = cell or (44 if len(columns) <= 8 else 34)
    room = _text_width(rows, 170)  # for the row labels
    left = room + 22  # and the row axis title
    slant = max((len(c) for c in columns), default=0) * CHAR_WIDTH > cell - 4
    head = (_text_width(columns, 170) * 0.72 if slant else 18) + 22
    width = left + cell * len(columns) + (head if slant else 12)  # slanted labels lean right
    height = head + cell * len(rows) + 8
    parts = [
        f'<svg class="chart grid" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="12" class="axis-title">{escape(column_axis)} →</text>',
        f'<text transform="translate(12 {head + cell * len(rows) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle" class="axis-title">{escape(row_axis)} →</text>',
    ]
    for j, label in enumerate(columns):
        x = left + j * cell + cell / 2
        if slant:
            parts.append(
                f'<text transform="translate({x - 2:.0f} {head - 6:.0f}) rotate(-45)" '
                f'class="axis"><title>{escape(label)}</title>{escape(_shorten(label, 170))}</text>'
            )
        else:
            parts.append(
                f'<text x="{x:.0f}" y="{head - 6:.0f}" text-anchor="middle" class="axis">'
                f"<title>{escape(label)}</title>{escape(label)}</text>"
            )
    for i, label in enumerate(rows):
        y = head + i * cell
        parts.append(
            f'<text x="{left - 8:.0f}" y="{y + cell / 2 + 4:.0f}" text-anchor="end" class="axis">'
            f"<title>{escape(label)}</title>{escape(_shorten(label, room))}</text>"
        )
        for j, (text, share, colour) in enumerate(cells[i]):
            x = left + j * cell
            ink = "#ffffff" if share > 0.55 else "#1f2937"
            parts.append(
                f'<rect x="{x + 1:.0f}" y="{y + 1:.0f}" width="{cell - 2}" height="{cell - 2}" '
                f'rx="3" fill="{_mix(colour, share)}"><title>{escape(rows[i])} / '
                f"{escape(columns[j])}: {escape(text)}</title></rect>"
            )
            parts.append(
                f'<text x="{x + cell / 2:.0f}" y="{y + cell / 2 + 4:.0f}" text-anchor="middle" '
                f'class="cell" fill="{ink}">{escape(text)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
