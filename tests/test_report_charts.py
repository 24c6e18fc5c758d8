"""Inline SVG charts: well-formed XML whatever the data (empty, NaN, constant), round ticks, 3-decimal numbers."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from medbundle.report.charts import Series, format_interval, format_number, interval_bar, line_chart, nice_ticks


def _chart(*series: Series, **kwargs) -> ET.Element:
    svg = line_chart(list(series), x_label="x <a>", y_label="y & b", title="t", **kwargs)
    root = ET.fromstring(svg)
    assert all(
        "nan" not in value.lower() and "inf" not in value.lower() for el in root.iter() for value in el.attrib.values()
    )
    return root


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def test_nan_breaks_the_line() -> None:
    root = _chart(Series("a", [0, 1, float("nan"), 3, 4], [0, 1, 2, 3, math.inf]))
    lines = [el for el in root.iter() if _tag(el) == "polyline"]
    assert [len(el.get("points").split()) for el in lines] == [2, 1]


@pytest.mark.parametrize("series", [[], [Series("empty", [], [])], [Series("nan", [float("nan")], [float("nan")])]])
def test_no_data(series: list[Series]) -> None:
    root = ET.fromstring(line_chart(series, x_label="x", y_label="y", title="t"))
    assert "no data" in "".join(root.itertext())


def test_constant_values_and_numpy_input() -> None:
    root = _chart(Series("c", np.arange(3), np.full(3, 0.5, np.float32), dots=True, weights=[1, 0, 4]))
    assert len([el for el in root.iter() if _tag(el) == "circle"]) == 3


def test_fixed_range_diagonal_and_marker() -> None:
    root = _chart(
        Series("roc", [0, 0.2, 1], [0, 0.7, 1]),
        x_range=(0, 1),
        y_range=(0, 1),
        diagonal=True,
        marker=(0.2, 0.7, "t = 0.3"),
    )
    text = "".join(root.itertext())
    assert "t = 0.3" in text and "x <a>" in text and "y & b" in text
    assert any(el.get("stroke-dasharray") == "4 4" for el in root.iter() if _tag(el) == "line")


def test_nice_ticks() -> None:
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(1, 10) == [2, 4, 6, 8, 10]
    assert nice_ticks(0.41, 0.95) == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert nice_ticks(float("nan"), 1) == [] and nice_ticks(3, 3) == [3]


def test_interval_bar_with_missing_parts() -> None:
    full = ET.fromstring(interval_bar(0.5, 0.4, 0.6, axis=(0, 1), reference=0.7, flagged=True))
    assert "#b42318" in ET.tostring(full, encoding="unicode")
    partial = ET.fromstring(interval_bar(0.5, float("nan"), float("nan"), axis=(0, 1)))
    assert [_tag(el) for el in partial.iter()].count("rect") == 1
    assert "".join(ET.fromstring(interval_bar(float("nan"), 0.1, 0.2, axis=(0, 1))).itertext()) == "n/a (0.100–0.200)"


def test_formatting() -> None:
    assert (
        format_number(float("nan")) == "n/a"
        and format_number(None) == "n/a"
        and format_number(np.float32(0.5)) == "0.500"
    )
    assert format_interval(0.87123, math.inf, 0.9) == "0.871 (n/a–0.900)"
