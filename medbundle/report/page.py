"""The evaluation report as one self-contained HTML page, with its numbers beside it as strict JSON.

``render_report`` turns a report dict (headline metrics with intervals, an ensemble's members, curves, confusion
matrix, calibration, training curves, subgroups, Grad-CAM evidence, notes and settings) into ``index.html`` that
opens from disk with no network: system fonts, inline CSS, charts as inline SVG, images as ``data:`` URIs, no
JavaScript. Every section is optional except the title; absent or empty sections are left out. ``report.json``
holds the same numbers, images replaced by their file names (or left out where they came as bytes or arrays).
"""

from __future__ import annotations

import base64
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from medbundle.io.atomic_file import atomic_write
from medbundle.io.strict_json import to_strict_json
from medbundle.report.charts import (
    PALETTE,
    Series,
    format_interval,
    format_number,
    interval_bar,
    line_chart,
)

__all__ = ["render_report"]

_CURVE_KINDS = {
    "roc": {"x_label": "False positive rate", "y_label": "True positive rate", "diagonal": True},
    "pr": {"x_label": "Recall", "y_label": "Precision", "diagonal": False},
}

_CSS = """
:root { --ink: #1f2933; --muted: #52606d; --line: #e4e7eb; --panel: #f7f9fb; --accent: #0072b2;
  --warn-bg: #fff8e6; --warn-line: #e6a700; --flag-bg: #fdecea; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #ffffff; line-height: 1.45;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 24px 48px; }
header h1 { margin: 0 0 4px; font-size: 1.7rem; font-weight: 600; }
header p { margin: 0; color: var(--muted); }
section { margin-top: 36px; break-inside: avoid-page; }
h2 { font-size: 1.2rem; font-weight: 600; margin: 0 0 2px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; font-weight: 600; margin: 18px 0 6px; }
p.explain { margin: 6px 0 14px; color: var(--muted); font-size: 0.93rem; }
.flags { margin-top: 24px; padding: 12px 16px; background: var(--warn-bg); border-left: 4px solid var(--warn-line);
  border-radius: 4px; }
.flags strong { display: block; margin-bottom: 4px; }
.flags ul { margin: 0; padding-left: 20px; }
table { border-collapse: collapse; width: 100%; font-size: 0.93rem; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-weight: 600; color: var(--muted); background: var(--panel); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: var(--flag-bg); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 20px; }
figure { margin: 0; padding: 12px; border: 1px solid var(--line); border-radius: 6px; background: #ffffff;
  break-inside: avoid; }
figcaption { font-size: 0.9rem; margin-top: 6px; color: var(--muted); overflow-wrap: anywhere; }
figcaption b { color: var(--ink); font-weight: 600; }
svg.chart { width: 100%; height: auto; display: block; }
.legend { list-style: none; margin: 6px 0 0; padding: 0; font-size: 0.85rem; }
.legend li { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 12px; height: 3px; margin-right: 5px; vertical-align: middle; }
.swatch.dashed { background: repeating-linear-gradient(90deg, currentColor 0 4px, transparent 4px 6px) !important; }
table.confusion { width: auto; }
table.confusion td { text-align: center; min-width: 72px; font-variant-numeric: tabular-nums; }
.evidence { grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); }
.evidence img { width: 100%; height: auto; display: block; border-radius: 3px; background: #000000; }
.stats { display: flex; flex-wrap: wrap; gap: 24px; margin-bottom: 12px; }
.stats div { font-size: 0.93rem; } .stats b { font-size: 1.15rem; display: block; }
ul.notes { padding-left: 20px; }
table.settings { width: auto; min-width: 50%; }
footer { margin-top: 40px; font-size: 0.8rem; color: var(--muted); }
@media print {
  main { max-width: none; padding: 0; }
  section, figure, tr { break-inside: avoid; }
  .grid { grid-template-columns: repeat(2, 1fr); }
  .flags, tr.flagged td, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def render_report(report: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``index.html`` (self-contained) and ``report.json`` (strict JSON) for `report` into `out_dir`.

    Args:
        report: the evaluation report; ``title`` is required, every other section (``subtitle``, ``flags``,
            ``headline``, ``members``, ``curves``, ``confusion``, ``calibration``, ``training``, ``subgroups``,
            ``evidence``, ``notes``, ``settings``) is rendered where present and skipped where absent or empty.
            Evidence images (``png``) may be a file path, PNG bytes or an (H, W, 3) uint8 RGB array.
        out_dir: the folder to write into; created if missing.

    Returns:
        The path of ``index.html``.

    Raises:
        ValueError: the report has no title, a curve has an unknown ``kind`` or an evidence image cannot be read.
    """
    if not report.get("title"):
        raise ValueError("report has no 'title': render_report needs at least {'title': ...}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = [_header(report)]
    for key, heading, explanation, render in _SECTIONS:
        value = report.get(key)
        if value is None or (isinstance(value, (Sequence, Mapping)) and len(value) == 0):
            continue
        content = render(value, report)
        if content:
            body.append(
                f'<section id="{key}"><h2>{escape(heading)}</h2><p class="explain">{escape(explanation)}</p>'
                f"{content}</section>"
            )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(str(report['title']))}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}<footer>Generated by medbundle. Intervals are 95 % confidence intervals; "
        f"n/a marks a value that is undefined for these data.</footer></main></body></html>\n"
    )
    index = out_dir / "index.html"
    with atomic_write(index, text=True) as stream:
        stream.write(page)
    with atomic_write(out_dir / "report.json", text=True) as stream:
        stream.write(to_strict_json(_plain(_without_images(report)), indent=2) + "\n")
    return index


def _header(report: Mapping[str, Any]) -> str:
    parts = [f"<header><h1>{escape(str(report['title']))}</h1>"]
    if report.get("subtitle"):
        parts.append(f"<p>{escape(str(report['subtitle']))}</p>")
    parts.append("</header>")
    if report.get("flags"):
        items = "".join(f"<li>{escape(str(flag))}</li>" for flag in report["flags"])
        parts.append(
            f'<div class="flags" role="alert"><strong>Check before relying on these results</strong>'
            f"<ul>{items}</ul></div>"
        )
    return "".join(parts)


def _headline(rows: Sequence[Mapping[str, Any]], _: Mapping[str, Any]) -> str:
    body = "".join(
        f"<tr><td>{escape(str(row.get('metric', '')))}</td><td>{escape(str(row.get('level', '')))}</td>"
        f'<td class="num">{format_interval(row.get("estimate"), row.get("low"), row.get("high"))}</td>'
        f'<td class="num">{_count(row.get("n"))}</td></tr>'
        for row in rows
    )
    return (
        '<table><thead><tr><th>Metric</th><th>Level</th><th class="num">Value (95 % CI)</th>'
        f'<th class="num">n</th></tr></thead><tbody>{body}</tbody></table>'
    )


def _members(rows: Sequence[Mapping[str, Any]], _: Mapping[str, Any]) -> str:
    """One row per member and one for the ensemble, columns as they come; numbers to 3 decimals, a missing text
    (the ensemble's image size) left blank."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    numeric = {c: all(isinstance(row.get(c), numbers.Real) and not isinstance(row.get(c), bool) for row in rows)
               for c in columns}  # fmt: skip
    align = {c: ' class="num"' if numeric[c] else "" for c in columns}

    def cell(value: Any, number: bool) -> str:
        if number:
            return format_number(value)
        return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else escape(str(value))

    head = "".join(f"<th{align[c]}>{escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td{align[c]}>{cell(row.get(c), numeric[c])}</td>" for c in columns) + "</tr>"
                   for row in rows)  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _curves(curves: Sequence[Mapping[str, Any]], _: Mapping[str, Any]) -> str:
    figures = []
    for i, curve in enumerate(curves):
        kind = curve.get("kind")
        if kind not in _CURVE_KINDS:
            raise ValueError(f"report curves[{i}].kind is {kind!r}; use one of {sorted(_CURVE_KINDS)}")
        lines = [
            Series(
                name=_series_name(s), x=list(s.get("x", ())), y=list(s.get("y", ())), color=PALETTE[j % len(PALETTE)]
            )
            for j, s in enumerate(curve.get("series", ()))
        ]
        marker = curve.get("marker")
        title = str(curve.get("title") or kind.upper())
        svg = line_chart(
            lines,
            title=title,
            x_range=(0.0, 1.0),
            y_range=(0.0, 1.0),
            marker=(marker["x"], marker["y"], str(marker.get("label", ""))) if marker else None,
            **_CURVE_KINDS[kind],
        )
        figures.append(f"<figure>{svg}{_legend(lines)}<figcaption><b>{escape(title)}</b></figcaption></figure>")
    return f'<div class="grid">{"".join(figures)}</div>'


def _series_name(series: Mapping[str, Any]) -> str:
    name = str(series.get("name", ""))
    auc = series.get("auc")
    return f"{name} (AUC {format_number(auc)})" if auc is not None else name


def _confusion(confusion: Mapping[str, Any], _: Mapping[str, Any]) -> str:
    classes = [str(name) for name in confusion.get("classes", ())]
    matrix = [list(row) for row in confusion.get("matrix", ())]
    if not matrix:
        return ""
    peak = max((float(v) for row in matrix for v in row if _finite(v)), default=0.0) or 1.0
    head = "".join(f'<th scope="col">{escape(name)}</th>' for name in classes)
    rows = []
    for i, row in enumerate(matrix):
        total = sum(float(v) for v in row if _finite(v))
        cells = []
        for value in row:
            share = float(value) / peak if _finite(value) else 0.0
            text_color = "#ffffff" if share > 0.55 else "#1f2933"
            fraction = f"<br><small>{float(value) / total:.1%}</small>" if total and _finite(value) else ""
            cells.append(
                f'<td style="background: rgba(0, 114, 178, {share:.3f}); color: {text_color}">'
                f"{_count(value)}{fraction}</td>"
            )
        name = classes[i] if i < len(classes) else str(i)
        rows.append(f'<tr><th scope="row">{escape(name)}</th>{"".join(cells)}</tr>')
    return (
        '<table class="confusion"><thead><tr><th>Truth ↓ / Prediction →</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _calibration(calibration: Mapping[str, Any], _: Mapping[str, Any]) -> str:
    stats = [
        ("Temperature", calibration.get("temperature")),
        ("Logit bias", calibration.get("bias")),
        ("ECE before", calibration.get("ece_before")),
        ("ECE after", calibration.get("ece_after")),
    ]
    stats_html = "".join(
        f"<div><b>{format_number(value)}</b>{escape(label)}</div>" for label, value in stats if value is not None
    )
    lines = []
    for key, name, color, dashed in (
        ("bins_before", "before scaling", PALETTE[1], True),
        ("bins_after", "after scaling", PALETTE[0], False),
    ):
        bins = calibration.get(key)
        if bins:
            lines.append(
                Series(
                    name=name,
                    x=list(bins.get("confidence", ())),
                    y=list(bins.get("frequency", ())),
                    color=color,
                    dashed=dashed,
                    dots=True,
                    weights=list(bins.get("count", ())),
                )
            )
    figure = ""
    if lines:
        svg = line_chart(
            lines,
            title="Reliability diagram",
            x_label="Predicted probability",
            y_label="Observed frequency",
            x_range=(0.0, 1.0),
            y_range=(0.0, 1.0),
            diagonal=True,
        )
        figure = (
            f'<div class="grid"><figure>{svg}{_legend(lines)}<figcaption><b>Reliability diagram</b> — dot size '
            f"shows how many cases fall in each bin; the dashed diagonal is perfect calibration.</figcaption>"
            f"</figure></div>"
        )
    return f'<div class="stats">{stats_html}</div>{figure}'


def _training(tags: Sequence[Mapping[str, Any]], _: Mapping[str, Any]) -> str:
    figures = []
    for i, tag in enumerate(tags):
        name = str(tag.get("tag", ""))
        line = Series(
            name=name,
            x=list(tag.get("steps", ())),
            y=list(tag.get("values", ())),
            color=PALETTE[i % len(PALETTE)],
            dots=len(tag.get("steps", ())) <= 40,
        )
        svg = line_chart([line], title=name, x_label="Epoch", y_label=name.rsplit("/", 1)[-1])
        figures.append(f"<figure>{svg}<figcaption><b>{escape(name)}</b></figcaption></figure>")
    return f'<div class="grid">{"".join(figures)}</div>'


def _subgroups(rows: Sequence[Mapping[str, Any]], report: Mapping[str, Any]) -> str:
    ends = [float(row[k]) for row in rows for k in ("low", "high", "estimate") if _finite(row.get(k))]
    overall: dict[str, float] = {}  # the metric's first headline row (its primary level) is the reference
    for headline in report.get("headline", ()):
        if _finite(headline.get("estimate")):
            overall.setdefault(str(headline.get("metric")), float(headline["estimate"]))
    ends += [value for name, value in overall.items() if any(str(row.get("metric")) == name for row in rows)]
    axis = (min(ends, default=0.0), max(ends, default=1.0))
    if axis[1] - axis[0] < 1e-9:
        axis = (axis[0] - 0.05, axis[1] + 0.05)
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row.get("attribute", "")), []).append(row)
    body = []
    for attribute, members in grouped.items():
        body.append(f'<tr><th colspan="5" scope="rowgroup">{escape(attribute)}</th></tr>')
        for row in members:
            flagged = bool(row.get("flag"))
            bar = interval_bar(
                row.get("estimate"), row.get("low"), row.get("high"),
                axis=axis, reference=overall.get(str(row.get("metric"))), flagged=flagged,
            )  # fmt: skip
            opening, mark = ('<tr class="flagged">', " ⚠") if flagged else ("<tr>", "")
            body.append(
                f"{opening}<td>{escape(str(row.get('group', '')))}{mark}</td>"
                f"<td>{escape(str(row.get('metric', '')))}</td>"
                f'<td class="num">{_count(row.get("n"))}</td>'
                f'<td class="num">{_subgroup_value(row)}</td>'
                f"<td>{bar}</td></tr>"
            )
    scale = f"axis {format_number(axis[0])} to {format_number(axis[1])}"
    return (
        '<table><thead><tr><th>Group</th><th>Metric</th><th class="num">n</th><th class="num">Value (95 % CI)</th>'
        f"<th>Interval ({escape(scale)}; dashed: overall)</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _subgroup_value(row: Mapping[str, Any]) -> str:
    """The estimate with its interval, or with the reason it has none (too few patients to resample)."""
    if row.get("note"):
        return f"{format_number(row.get('estimate'))} <small>({escape(str(row['note']))})</small>"
    return escape(format_interval(row.get("estimate"), row.get("low"), row.get("high")))


def _evidence(sections: Sequence[Mapping[str, Any]], _: Mapping[str, Any]) -> str:
    parts = []
    for section in sections:
        items = section.get("items", ())
        if not items:
            continue
        figures = []
        for item in items:
            image_id = escape(str(item.get("image_id", "")))
            caption = f"<b>{image_id}</b> · p = {format_number(item.get('probability'))}"
            if item.get("label") is not None:
                caption += f" · label {escape(str(item['label']))}"
            source = base64.b64encode(_png_bytes(item.get("png"), image_id)).decode("ascii")
            figures.append(
                f'<figure><img src="data:image/png;base64,{source}" alt="Grad-CAM overlay of {image_id}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        parts.append(
            f'<h3>{escape(str(section.get("section", "")))}</h3><div class="grid evidence">{"".join(figures)}</div>'
        )
    return "".join(parts)


def _notes(notes: Sequence[str], _: Mapping[str, Any]) -> str:
    return '<ul class="notes">' + "".join(f"<li>{escape(str(note))}</li>" for note in notes) + "</ul>"


def _settings(settings: Mapping[str, Any], _: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{escape(str(key))}</th><td>{escape(_setting_text(value))}</td></tr>'
        for key, value in settings.items()
    )
    return f'<table class="settings"><tbody>{rows}</tbody></table>'


class _Section(NamedTuple):
    key: str
    heading: str
    explanation: str
    render: Callable[[Any, Mapping[str, Any]], str]


_SECTIONS = (
    _Section(
        "headline",
        "Headline metrics",
        "Overall performance with 95 % bootstrap confidence intervals; n is the number of units (breasts, images or "
        "patients) the metric is computed over.",
        _headline,
    ),
    _Section(
        "members",
        "Members",
        "An ensemble's members beside the ensemble (last row), on the task's metrics at the level it is scored at; "
        "binary rows decide at their own threshold.",
        _members,
    ),
    _Section(
        "curves",
        "ROC and precision–recall curves",
        "How sensitivity and precision trade off across thresholds; the circle marks the stored operating threshold, "
        "the dashed diagonal on ROC plots is chance.",
        _curves,
    ),
    _Section(
        "confusion",
        "Confusion matrix",
        "Counts at the operating threshold: rows are the truth, columns the prediction; the percentage is the share "
        "of the row.",
        _confusion,
    ),
    _Section(
        "calibration",
        "Calibration",
        "Whether predicted probabilities match observed frequencies, before and after calibration (a temperature; "
        "for a binary model with a logit bias too, Platt scaling, which also undoes the prior shift of training on a "
        "share of the negatives); ECE is the expected calibration error (lower is better).",
        _calibration,
    ),
    _Section(
        "subgroups",
        "Subgroups",
        "The metric within each subgroup with its 95 % interval; highlighted rows have an interval wholly below the "
        "overall value.",
        _subgroups,
    ),
    _Section("training", "Training", "Loss and validation metrics per epoch during training.", _training),
    _Section(
        "evidence",
        "Evidence (Grad-CAM)",
        "Where the model looked: class-activation overlays for selected cases, with the predicted probability and "
        "the true label.",
        _evidence,
    ),
    _Section("notes", "Notes", "Remarks on the data and the evaluation.", _notes),
    _Section("settings", "Settings", "How this evaluation was run.", _settings),
)


def _legend(lines: Sequence[Series]) -> str:
    if len(lines) < 2 and not any(line.name for line in lines):
        return ""
    items = "".join(
        f'<li style="color: {line.color}"><span class="swatch{" dashed" if line.dashed else ""}" '
        f'style="background: {line.color}"></span><span style="color: #1f2933">{escape(line.name)}</span></li>'
        for line in lines
    )
    return f'<ul class="legend">{items}</ul>'


def _png_bytes(png: Any, image_id: str) -> bytes:
    """PNG bytes of an evidence image given as a file path, PNG bytes or an (H, W, 3) uint8 RGB array."""
    if isinstance(png, (bytes, bytearray)):
        return bytes(png)
    if isinstance(png, (str, Path)):
        path = Path(png)
        if not path.is_file():
            raise ValueError(
                f"evidence image {image_id!r}: {path} does not exist; "
                "pass an existing PNG path, PNG bytes or an (H, W, 3) uint8 RGB array"
            )
        return path.read_bytes()
    if isinstance(png, np.ndarray) and png.dtype == np.uint8 and png.ndim == 3 and png.shape[2] == 3:
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(png[..., ::-1]))
        if ok:
            return encoded.tobytes()
    raise ValueError(
        f"evidence image {image_id!r} is {type(png).__name__} "
        f"{getattr(png, 'shape', '')} {getattr(png, 'dtype', '')}; "
        "pass a PNG path, PNG bytes or an (H, W, 3) uint8 RGB array"
    )


def _without_images(report: Mapping[str, Any]) -> dict[str, Any]:
    """`report` with each evidence image replaced by its file name, or left out where it has none."""
    plain = dict(report)
    if "evidence" in plain and plain["evidence"] is not None:
        plain["evidence"] = [
            {**section, "items": [_image_reference(item) for item in section.get("items", ())]}
            for section in plain["evidence"]
        ]
    return plain


def _image_reference(item: Mapping[str, Any]) -> dict[str, Any]:
    plain = {key: value for key, value in item.items() if key != "png"}
    if isinstance(item.get("png"), (str, Path)):
        plain["png"] = Path(item["png"]).name
    return plain


def _plain(value: Any) -> Any:
    """`value` with numpy arrays, numpy scalars and paths turned into the JSON types they stand for."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> str:
    if _finite(value):
        return f"{int(value):,}" if float(value).is_integer() else format_number(value)
    return "n/a"


def _setting_text(value: Any) -> str:
    if isinstance(value, float):
        return format_number(value) if not math.isfinite(value) else f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting_text(item) for item in value)
    return str(value)
