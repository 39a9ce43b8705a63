"""report.html: the comparison as one self-contained page for a person choosing a model.

Everything is inline (CSS, SVG charts); the page loads nothing and names no
URL, so it opens the same from a laptop, a mail attachment or an air-gapped
machine. Long lists are cut short here; comparison.json has them whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from orchestrator.operations.compare.charts import bars, heat_grid
from orchestrator.operations.compare.metrics import ModelResult, Table

GRID_MAX_CLASSES = 20  # beyond, a confusion matrix is a list of the most frequent confusions
CLASS_ROWS = 60
DISAGREEMENT_ROWS = 200
MISSING_SHOWN = 50
GREEN = (21, 128, 61)
RED = (220, 38, 38)
BLUE = (37, 99, 235)
ACCENT = "#6366f1"

CSS = """
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --paper: #ffffff; --wash: #f8fafc;
  --accent: #6366f1; --good: #15803d; --good-bg: #dcfce7; --bad: #b91c1c; --bad-bg: #fee2e2; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--wash); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 32px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 28px; letter-spacing: -0.01em; }
.lede { margin: 0; color: var(--muted); font-size: 16px; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 12px;
  padding: 20px 24px; margin-top: 20px; }
h2 { margin: 0 0 4px; font-size: 19px; }
.note { margin: 0 0 14px; color: var(--muted); font-size: 13.5px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 14px;
  background: none; border: 0; padding: 0; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 12px;
  padding: 16px 18px; border-top: 4px solid var(--accent); }
.card.best { border-top-color: var(--good); }
.card h3 { margin: 0; font-size: 15px; word-break: break-all; }
.card .big { font-size: 34px; font-weight: 650; letter-spacing: -0.02em; margin: 6px 0 0; }
.card .big small { font-size: 13px; font-weight: 500; color: var(--muted); margin-left: 4px; }
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 10px 0 0;
  font-size: 13.5px; }
.card dt { color: var(--muted); }
.card dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; font-size: 11.5px; font-weight: 600; padding: 1px 8px;
  border-radius: 999px; margin: 6px 6px 0 0; background: #eef2ff; color: #3730a3; }
.badge.good { background: var(--good-bg); color: var(--good); }
.badge.warn { background: #fef3c7; color: #92400e; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-size: 12.5px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted);
  font-weight: 600; background: var(--wash); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:hover { background: #f9fafb; }
td.name { word-break: break-all; font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
  font-size: 13px; }
td.right { background: var(--good-bg); color: var(--good); }
td.wrong { background: var(--bad-bg); color: var(--bad); }
td.none { color: var(--muted); font-style: italic; }
.strong { font-weight: 650; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 18px; }
.figure h3 { margin: 0 0 8px; font-size: 15px; }
.figures { display: flex; flex-wrap: wrap; gap: 24px 36px; }
.scroll { overflow-x: auto; }
svg.chart { max-width: 100%; height: auto; font-size: 12px; }
svg .axis { fill: #374151; }
svg .axis-title { fill: var(--muted); font-size: 11px; text-transform: uppercase;
  letter-spacing: 0.05em; }
svg .value { fill: var(--ink); font-weight: 600; font-variant-numeric: tabular-nums; }
svg .muted { fill: var(--muted); }
svg .cell { font-size: 12px; font-weight: 600; font-variant-numeric: tabular-nums; }
ul.items { margin: 6px 0 0; padding-left: 18px; font-family: ui-monospace, Menlo, monospace;
  font-size: 13px; columns: 3 220px; }
footer { color: var(--muted); font-size: 13px; margin-top: 24px; }
footer dt { font-weight: 600; color: var(--ink); margin-top: 8px; }
footer dd { margin: 0; }
@media print { body { background: #fff; } section, .card { break-inside: avoid; } }
"""


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f} s"


def render(table: Table, title: str = "Model comparison") -> str:
    """The whole page."""
    sections = [_cards(table), _overview(table), _charts(table), _agreement(table)]
    if table.truth is not None:
        sections += [_confusions(table), _classes(table)]
    else:
        sections.append(_distribution(table))
    sections += [_disagreements(table), _missing(table)]
    lede = f"{len(table.models)} models · {len(table.items):,} items"
    if table.truth is not None:
        lede += f" · {table.labelled:,} with a truth label · {len(table.labels)} classes"
    else:
        lede += " · no truth labels given: agreement only"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
            f'<header><h1>{escape(title)}</h1><p class="lede">{escape(lede)}</p></header>\n',
            "\n".join(s for s in sections if s),
            _footer(table),
            "\n</main>\n</body>\n</html>\n",
        ]
    )


def _best(table: Table) -> tuple[str | None, str | None]:
    """The most accurate model and the fastest, when there is something to compare."""
    scored = [(m.accuracy, m.name) for m in table.models if m.accuracy is not None]
    fast = [(m.labels.rows_per_second, m.name) for m in table.models]
    timed = [(rate, name) for rate, name in fast if rate is not None]
    best = max(scored)[1] if len(scored) > 1 else None
    fastest = max(timed)[1] if len(timed) > 1 else None
    return best, fastest


def _mean_agreement(table: Table, name: str) -> float | None:
    rates = [a.rate for a in table.agreement if name in a.models and a.rate is not None]
    return sum(rates) / len(rates) if rates else None


def _cards(table: Table) -> str:
    best, fastest = _best(table)
    cards = []
    for model in table.models:
        if table.truth is not None:
            big = f"{percent(model.accuracy)}<small>accuracy</small>"
        else:
            big = f"{percent(_mean_agreement(table, model.name))}<small>mean agreement</small>"
        badges = []
        if model.name == best:
            badges.append('<span class="badge good">most accurate</span>')
        if model.name == fastest:
            badges.append('<span class="badge">fastest</span>')
        if model.missing:
            badges.append(f'<span class="badge warn">{len(model.missing):,} missing</span>')
        rows = [("Predicted", f"{len(model.labels.labels):,} items")]
        if table.truth is not None:
            rows.append(("Macro F1", number(model.macro_f1, 3)))
        rows += [
            ("Inference time", seconds(model.labels.source.seconds)),
            ("Throughput", _rate(model)),
        ]
        details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
        cards.append(
            f'<div class="card{" best" if model.name == best else ""}">'
            f'<h3>{escape(model.name)}</h3><p class="big">{big}</p>{"".join(badges)}'
            f"<dl>{details}</dl></div>"
        )
    return f'<section class="cards">{"".join(cards)}</section>'


def _rate(model: ModelResult) -> str:
    rate = model.labels.rows_per_second
    return "—" if rate is None else f"{rate:,.1f} rows/s"


def _overview(table: Table) -> str:
    truth = table.truth is not None
    head = ["Model", "Accuracy", "Correct", "Macro F1"] if truth else ["Model", "Mean agreement"]
    head += ["Predicted", "Missing", "Time", "Rows/s"]
    best, _ = _best(table)
    body = []
    for model in table.models:
        cells = [f'<td class="{"strong" if model.name == best else ""}">{escape(model.name)}</td>']
        if truth:
            cells += [
                f'<td class="num">{percent(model.accuracy)}</td>',
                f'<td class="num">{model.correct:,} / {model.evaluated:,}</td>',
                f'<td class="num">{number(model.macro_f1, 3)}</td>',
            ]
        else:
            cells.append(f'<td class="num">{percent(_mean_agreement(table, model.name))}</td>')
        cells += [
            f'<td class="num">{len(model.labels.labels):,}</td>',
            f'<td class="num">{len(model.missing):,}</td>',
            f'<td class="num">{seconds(model.labels.source.seconds)}</td>',
            f'<td class="num">{number(model.labels.rows_per_second, 1)}</td>',
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    headings = "".join(
        f'<th class="{"" if i == 0 else "num"}">{escape(h)}</th>' for i, h in enumerate(head)
    )
    if truth:
        note = (
            "Accuracy counts the items that have a truth label and a prediction from the model; "
            "items a model did not predict are listed under Missing."
        )
    else:
        note = "Without truth labels, models are compared by how often they agree."
    return (
        f'<section><h2>At a glance</h2><p class="note">{note}</p><div class="scroll"><table>'
        f"<thead><tr>{headings}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        "</section>"
    )


def _charts(table: Table) -> str:
    figures = []
    if table.truth is not None:
        rows = [(m.name, m.accuracy) for m in table.models]
        chart = bars(rows, percent, ACCENT, "Accuracy by model", top=1.0)
        figures.append(f'<div class="figure"><h3>Accuracy</h3>{chart}</div>')
    speeds = [(m.name, m.labels.rows_per_second) for m in table.models]
    if any(v is not None for _, v in speeds):
        chart = bars(speeds, lambda v: f"{v:,.1f}/s", "#0ea5e9", "Rows per second by model")
        figures.append(f'<div class="figure"><h3>Throughput (rows per second)</h3>{chart}</div>')
    if not figures:
        return ""
    return f'<section><div class="charts">{"".join(figures)}</div></section>'


def _agreement(table: Table) -> str:
    names = [m.name for m in table.models]
    rates: dict[tuple[str, str], tuple[float | None, int]] = {}
    for a in table.agreement:
        rates[a.models] = rates[a.models[::-1]] = (a.rate, a.items)
    cells = []
    for row in names:
        line = []
        for column in names:
            if row == column:
                line.append(("—", 0.0, BLUE))
                continue
            rate, _ = rates[(row, column)]
            line.append((percent(rate), rate or 0.0, BLUE))
        cells.append(line)
    grid = heat_grid(names, names, cells, "Pairwise agreement", "model", "model", cell=68)
    return (
        "<section><h2>Agreement</h2>"
        '<p class="note">The share of items, among those both models predicted, on which two '
        "models gave the same label. High agreement between models that are both often wrong "
        f'is still wrong: read it beside accuracy.</p><div class="scroll">{grid}</div></section>'
    )


def _confusion_cells(model: ModelResult) -> list[list[tuple[str, float, tuple[int, int, int]]]]:
    cells = []
    for i, row in enumerate(model.confusion):
        total = sum(row)
        cells.append(
            [
                (
                    str(count) if count else "",
                    count / total if total else 0.0,
                    GREEN if i == j else RED,
                )
                for j, count in enumerate(row)
            ]
        )
    return cells


def _confusions(table: Table) -> str:
    labels = table.labels
    if len(labels) <= GRID_MAX_CLASSES:
        figures = [
            f'<div class="figure"><h3>{escape(m.name)}</h3>'
            + heat_grid(
                labels,
                labels,
                _confusion_cells(m),
                f"Confusion matrix of {m.name}",
                "truth",
                "predicted",
            )
            + "</div>"
            for m in table.models
        ]
        note = (
            "Rows are the true label, columns the predicted one; each cell counts items. Green "
            "on the diagonal is right, red off it is a confusion; the shade is the share of the "
            "row (of the items truly of that class)."
        )
        return (
            f'<section><h2>Confusion matrices</h2><p class="note">{note}</p>'
            f'<div class="figures scroll">{"".join(figures)}</div></section>'
        )
    figures = []
    for m in table.models:
        pairs = sorted(
            (
                (count, labels[i], labels[j])
                for i, row in enumerate(m.confusion)
                for j, count in enumerate(row)
                if i != j and count
            ),
            reverse=True,
        )[:10]
        rows = (
            "".join(
                f'<tr><td>{escape(t)}</td><td>{escape(p)}</td><td class="num">{c:,}</td></tr>'
                for c, t, p in pairs
            )
            or '<tr><td colspan="3" class="none">no confusions</td></tr>'
        )
        figures.append(
            f'<div class="figure"><h3>{escape(m.name)}</h3><table><thead><tr><th>Truth</th>'
            f'<th>Predicted as</th><th class="num">Items</th></tr></thead><tbody>{rows}'
            "</tbody></table></div>"
        )
    return (
        "<section><h2>Most frequent confusions</h2>"
        f'<p class="note">{len(labels)} classes are too many for a readable matrix: here are '
        "each model's ten most frequent confusions; comparison.json has every matrix.</p>"
        f'<div class="charts">{"".join(figures)}</div></section>'
    )


def _classes(table: Table) -> str:
    scores = [{s.label: s for s in m.classes} for m in table.models]
    support = {label: 0 for label in table.labels}
    for name in table.items:
        label = table.truth.get(name) if table.truth is not None else None
        if label is not None:
            support[label] += 1
    labels = sorted(table.labels, key=lambda label: -support[label])
    shown = labels[:CLASS_ROWS]
    heads = "".join(f'<th class="num">{escape(m.name)}</th>' for m in table.models)
    body = []
    for label in shown:
        cells = []
        f1s = [s[label].f1 if label in s else None for s in scores]
        top = max((f for f in f1s if f is not None), default=None)
        for by_label in scores:
            score = by_label.get(label)
            if score is None:
                cells.append('<td class="num none">—</td>')
                continue
            strong = " strong" if score.f1 == top and len(table.models) > 1 else ""
            cells.append(
                f'<td class="num{strong}" title="precision {percent(score.precision)}, recall '
                f'{percent(score.recall)}">{score.f1:.3f}<br><small>P {percent(score.precision)} · '
                f"R {percent(score.recall)}</small></td>"
            )
        body.append(
            f'<tr><td>{escape(label)}</td><td class="num">{support[label]:,}</td>'
            f"{''.join(cells)}</tr>"
        )
    more = (
        f'<p class="note">The {len(labels) - len(shown):,} rarest classes are left out here; '
        "comparison.json has them.</p>"
        if len(labels) > len(shown)
        else ""
    )
    return (
        "<section><h2>Per class</h2>"
        '<p class="note">F1 of each model per class, with precision (P: of the items predicted as '
        "the class, the share truly of it) and recall (R: of the items truly of the class, the "
        "share found). Classes by number of items.</p>"
        f'<div class="scroll"><table><thead><tr><th>Class</th><th class="num">Items</th>{heads}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>{more}</section>"
    )


def _distribution(table: Table) -> str:
    heads = "".join(f'<th class="num">{escape(m.name)}</th>' for m in table.models)
    body = "".join(
        f"<tr><td>{escape(label)}</td>"
        + "".join(f'<td class="num">{m.counts.get(label, 0):,}</td>' for m in table.models)
        + "</tr>"
        for label in table.labels[:CLASS_ROWS]
    )
    return (
        '<section><h2>Predicted labels</h2><p class="note">How many items each model gave '
        "each label.</p>"
        f'<div class="scroll"><table><thead><tr><th>Label</th>{heads}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )


def _prediction_cell(label: str | None, truth: str | None) -> str:
    if label is None:
        return '<td class="none">no prediction</td>'
    kind = "" if truth is None else (" right" if label == truth else " wrong")
    return f'<td class="label{kind}">{escape(label)}</td>'


def _disagreements(table: Table) -> str:
    found = table.disagreements
    if not found:
        return (
            '<section><h2>Where the models disagree</h2><p class="note">Nowhere: every item '
            "predicted by several models got the same label from each.</p></section>"
        )
    truth = table.truth is not None
    heads = (
        "<th>Item</th>"
        + ("<th>Truth</th>" if truth else "")
        + "".join(f"<th>{escape(m.name)}</th>" for m in table.models)
    )
    rows = []
    for d in found[:DISAGREEMENT_ROWS]:
        cells = [f'<td class="name">{escape(d.name)}</td>']
        if truth:
            cells.append(
                f"<td>{escape(d.truth)}</td>" if d.truth is not None else '<td class="none">—</td>'
            )
        cells += [_prediction_cell(p, d.truth) for p in d.predictions]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    shown = min(len(found), DISAGREEMENT_ROWS)
    more = (
        f'<p class="note">The first {shown:,} of {len(found):,} are shown; comparison.json '
        "lists them all.</p>"
        if len(found) > shown
        else ""
    )
    share = len(found) / len(table.items) if table.items else 0.0
    return (
        "<section><h2>Where the models disagree</h2>"
        f'<p class="note">{len(found):,} of {len(table.items):,} items ({percent(share)}) got '
        "different labels from different models"
        + ("; green is right, red wrong." if truth else ".")
        + f'</p><div class="scroll"><table><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}'
        f"</tbody></table></div>{more}</section>"
    )


def _names(names: Sequence[str]) -> str:
    shown = "".join(f"<li>{escape(n)}</li>" for n in names[:MISSING_SHOWN])
    more = (
        f"<li>… and {len(names) - MISSING_SHOWN:,} more</li>" if len(names) > MISSING_SHOWN else ""
    )
    return f'<ul class="items">{shown}{more}</ul>'


def _missing(table: Table) -> str:
    parts = []
    for m in table.models:
        if m.missing:
            parts.append(
                f"<h3>{escape(m.name)}: no prediction for {len(m.missing):,} items</h3>"
                + _names(m.missing)
            )
    if table.not_predicted:
        parts.append(
            f"<h3>{len(table.not_predicted):,} items with a truth label that no model "
            "predicted</h3>" + _names(table.not_predicted)
        )
    if table.unlabelled:
        parts.append(
            f"<h3>{len(table.unlabelled):,} predicted items without a truth label</h3>"
            + _names(table.unlabelled)
        )
    if not parts:
        return ""
    return (
        '<section><h2>Missing items</h2><p class="note">Items are matched by name. These are '
        "left out of the figures that need them.</p>" + "".join(parts) + "</section>"
    )


def _footer(table: Table) -> str:
    terms = []
    if table.truth is not None:
        terms += [
            (
                "Accuracy",
                "Correct predictions over the items with a truth label the model predicted.",
            ),
            (
                "Macro F1",
                "The mean of the per-class F1 over every class in the truth or the "
                "model's predictions (a class never predicted scores 0).",
            ),
        ]
    terms += [
        ("Agreement", "Same label from both models, over the items both predicted."),
        ("Throughput", "Tensor rows sent over the model_inference time."),
    ]
    listed = "".join(f"<dt>{term}</dt><dd>{meaning}</dd>" for term, meaning in terms)
    return (
        f"<footer><dl>{listed}</dl><p>Made by Constellation's compare_predictions; every figure "
        "and item is in comparison.json beside this page.</p></footer>"
    )
