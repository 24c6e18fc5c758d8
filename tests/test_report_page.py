"""The report page: every section from a full report, absent sections skipped, self-contained HTML, strict JSON,
and the page opened in headless Chromium from disk (no console errors, no broken images, not blank)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from medbundle.report import check_in_browser, render_report
from medbundle.report.browser import find_chromium
from medbundle.report.page import _SECTIONS

SECTION_IDS = [key for key, *_ in _SECTIONS]


def _overlay(seed: int) -> np.ndarray:
    """A Grad-CAM-like RGB overlay: a grey gradient with a warm blob."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:80]
    base = np.stack([xx * 2, yy * 2, np.full_like(xx, 60)], axis=-1).astype(np.float32)
    cy, cx = rng.integers(20, 70, size=2)
    heat = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 200.0)[..., None]
    return np.clip(base * (1 - heat) + np.array([255, 60, 0]) * heat, 0, 255).astype(np.uint8)


def full_report(tmp_path: Path) -> dict:
    png_path = tmp_path / "case_0003.png"
    cv2.imwrite(str(png_path), _overlay(3)[..., ::-1])
    ok, png_bytes = cv2.imencode(".png", _overlay(2)[..., ::-1])
    assert ok
    fpr = np.linspace(0, 1, 21)
    return {
        "title": "Breast cancer screening — evaluation <draft>",
        "subtitle": "rsna · fold 0 · efficientnet_b3 · validation split (66 breasts)",
        "flags": ["Subgroup site=2: AUROC interval 0.41–0.62 lies wholly below the overall 0.871"],
        "headline": [
            {"metric": "AUROC", "level": "breast", "estimate": 0.8712, "low": 0.802, "high": 0.925, "n": 66},
            {"metric": "pF1", "level": "image", "estimate": float("nan"), "low": float("nan"), "high": 0.3, "n": 264},
        ],
        "members": [
            {"member": "effnet/fold0", "model": "efficientnet_b3", "image_size": "512x256", "threshold": 0.31,
             "auroc": 0.8523},
            {"member": "ensemble", "model": "soft <mean>", "image_size": float("nan"), "threshold": 0.3,
             "auroc": float("nan")},
        ],
        "curves": [
            {
                "kind": "roc",
                "title": "ROC (breast level)",
                "series": [
                    {"name": "validation", "x": fpr, "y": np.sqrt(fpr), "auc": 0.871},
                    {"name": "empty", "x": [], "y": [], "auc": None},
                    {
                        "name": "with gaps",
                        "x": [0.0, 0.2, float("nan"), 0.6, 1.0],
                        "y": [0.0, 0.5, 0.7, float("nan"), 1.0],
                    },
                ],
                "marker": {"x": 0.1, "y": 0.62, "label": "threshold 0.314"},
            },
            {
                "kind": "pr",
                "title": "Precision–recall",
                "series": [{"name": "validation", "x": [0.0, 0.5, 1.0], "y": [1.0, 0.6, 0.2], "auc": float("nan")}],
                "marker": None,
            },
        ],
        "confusion": {"classes": ["benign", "cancer"], "matrix": [[50, 4], [3, 9]]},
        "calibration": {
            "temperature": 1.42,
            "ece_before": 0.081,
            "ece_after": 0.023,
            "bins_before": {
                "confidence": [0.05, 0.3, 0.6, 0.9],
                "frequency": [0.02, 0.2, 0.45, 0.7],
                "count": [40, 12, 8, 6],
            },
            "bins_after": {
                "confidence": [0.05, 0.3, 0.6, float("nan")],
                "frequency": [0.04, 0.28, 0.58, float("nan")],
                "count": [40, 12, 8, 0],
            },
        },
        "training": [
            {"tag": "train/loss", "steps": list(range(1, 11)), "values": [1 / k for k in range(1, 11)]},
            {"tag": "val/auroc", "steps": [1, 2, 3], "values": [0.6, float("nan"), 0.8]},
            {"tag": "val/empty", "steps": [], "values": []},
        ],
        "subgroups": [
            {
                "attribute": "site",
                "group": "1",
                "n": 40,
                "metric": "AUROC",
                "estimate": 0.9,
                "low": 0.85,
                "high": 0.95,
                "flag": False,
            },
            {
                "attribute": "site",
                "group": "2",
                "n": 26,
                "metric": "AUROC",
                "estimate": 0.52,
                "low": 0.41,
                "high": 0.62,
                "flag": True,
            },
            {
                "attribute": "density",
                "group": "C & D",
                "n": 30,
                "metric": "AUROC",
                "estimate": 0.84,
                "low": float("nan"),
                "high": float("nan"),
                "flag": False,
            },
        ],
        "evidence": [
            {
                "section": "True positives",
                "items": [
                    {"image_id": "case_0001", "probability": 0.93, "label": "cancer", "png": _overlay(1)},
                    {"image_id": "case_0002", "probability": 0.88, "label": None, "png": bytes(png_bytes)},
                ],
            },
            {
                "section": "False negatives",
                "items": [{"image_id": "case_0003", "probability": 0.12, "label": "cancer", "png": str(png_path)}],
            },
        ],
        "notes": ["Intervals from 2000 bootstrap resamples of breasts <stratified>."],
        "settings": {"bootstrap": 2000, "seed": 0, "threshold": 0.314, "tta": ["flip"], "missing": float("nan")},
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("report")
    report = full_report(folder)
    return render_report(report, folder / "out"), report


def test_every_section_rendered(rendered: tuple[Path, dict]) -> None:
    index, _ = rendered
    assert index.name == "index.html" and index.is_file()
    html = index.read_text()
    for key in SECTION_IDS:
        assert f'<section id="{key}">' in html, key
    assert 'class="flags"' in html and "lies wholly below the overall 0.871" in html
    assert "0.871 (0.802–0.925)" in html  # estimate to 3 decimals with its interval
    assert "n/a (n/a–0.300)" in html  # NaN shown as n/a
    assert "validation (AUC 0.871)" in html and "validation (AUC n/a)" in html
    assert "threshold 0.314" in html
    assert '<td class="num">0.852</td>' in html and "<td>soft &lt;mean&gt;</td>" in html  # members: numbers, text
    assert "<td>512x256</td>" in html and "<td>soft &lt;mean&gt;</td><td></td>" in html  # a missing text: blank
    assert html.count('<tr class="flagged">') == 1
    assert html.count("<img ") == 3
    assert html.count('<svg class="chart"') == 2 + 1 + 3  # curves, reliability, training
    assert html.count('<svg class="bar"') == 3
    assert "no data" in html  # the empty training series
    assert "nan" not in re.sub(r"<[^>]*>", "", html).lower().replace("n/a", "")


def test_text_is_escaped(rendered: tuple[Path, dict]) -> None:
    html = rendered[0].read_text()
    assert "&lt;draft&gt;" in html and "<draft>" not in html
    assert "C &amp; D" in html and "&lt;stratified&gt;" in html


def test_self_contained(rendered: tuple[Path, dict]) -> None:
    html = rendered[0].read_text()
    attributes = re.findall(r'\b(?:src|href|xlink:href)\s*=\s*"([^"]*)"', html)
    assert not [value for value in attributes if not value.startswith("data:")]
    assert not re.search(r"url\((?!#)", html), "CSS must not load anything"
    assert "<script" not in html and "<link" not in html and "@import" not in html
    # the SVG namespace is an identifier, not a resource; nothing else may name a web address
    assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", html)
    sources = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(sources) == 3 and all(source.startswith("data:image/png;base64,") for source in sources)


def test_svg_is_well_formed(rendered: tuple[Path, dict]) -> None:
    import xml.etree.ElementTree as ET

    html = rendered[0].read_text()
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.DOTALL)
    assert len(svgs) == 9
    for svg in svgs:
        root = ET.fromstring(svg)
        assert all("nan" not in str(value).lower() for element in root.iter() for value in element.attrib.values())


def test_report_json_round_trips_strictly(rendered: tuple[Path, dict]) -> None:
    index, report = rendered
    text = (index.parent / "report.json").read_text()

    def refuse(constant: str) -> None:
        raise ValueError(f"non-strict JSON constant {constant}")

    data = json.loads(text, parse_constant=refuse)
    assert data["title"] == report["title"]
    assert data["headline"][0]["estimate"] == pytest.approx(0.8712)
    assert data["headline"][1]["estimate"] is None
    assert data["curves"][0]["series"][0]["x"] == pytest.approx(list(np.linspace(0, 1, 21)))
    assert data["calibration"]["bins_after"]["confidence"][-1] is None
    items = [item for section in data["evidence"] for item in section["items"]]
    assert [item.get("png") for item in items] == [None, None, "case_0003.png"]
    assert "png" not in items[0] and items[1]["label"] is None
    assert data["settings"]["missing"] is None
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_absent_sections_skipped(tmp_path: Path) -> None:
    index = render_report(
        {"title": "Only a title", "curves": [], "confusion": None, "evidence": [{"section": "x", "items": []}]},
        tmp_path,
    )
    html = index.read_text()
    assert "Only a title" in html
    assert "<section" not in html and 'class="flags"' not in html and "<img" not in html
    assert json.loads((tmp_path / "report.json").read_text())["title"] == "Only a title"


def test_partial_report(tmp_path: Path) -> None:
    html = render_report({"title": "t", "notes": ["one"], "settings": {"k": 1}}, tmp_path).read_text()
    assert re.findall(r'<section id="(\w+)"', html) == ["notes", "settings"]


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"subtitle": "no title"}, "title"),
        ({"title": "t", "curves": [{"kind": "det", "series": []}]}, "curves[0].kind"),
        (
            {"title": "t", "evidence": [{"section": "s", "items": [{"image_id": "a", "png": "/no/such.png"}]}]},
            "/no/such.png",
        ),
        (
            {"title": "t", "evidence": [{"section": "s", "items": [{"image_id": "a", "png": np.zeros((4, 4))}]}]},
            "(H, W, 3) uint8",
        ),
    ],
)
def test_bad_report_named(tmp_path: Path, report: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        render_report(report, tmp_path)


@pytest.fixture(scope="module")
def browser_result(rendered: tuple[Path, dict]) -> dict:
    if find_chromium() is None:
        pytest.skip(
            "Chromium is not installed and could not be installed (.ci/run tries `apt-get install -y chromium`); "
            "install it, or set MEDBUNDLE_CHROMIUM, to run the real-browser test"
        )
    index, _ = rendered
    return check_in_browser(index, index.parent / "screenshot.png")


def test_opens_in_browser_without_errors(browser_result: dict) -> None:
    assert browser_result["console_errors"] == []
    assert browser_result["network_requests"] == []
    assert browser_result["images"] == 3 and browser_result["broken_images"] == 0


def test_screenshot_not_blank(browser_result: dict) -> None:
    assert not browser_result["blank"]
    image = cv2.imread(str(browser_result["screenshot"]))
    assert image is not None and image.shape[1] == 1280 and image.shape[0] > 2000  # the whole page, not a viewport
    assert float(image.std()) > 20
    ink = (image.min(axis=2) < 200).mean(axis=1)  # share of darker pixels per row
    bands = np.array_split(ink, 6)
    assert all(band.max() > 0.01 for band in bands), [round(float(band.max()), 4) for band in bands]
    # the inline images rendered: the warm Grad-CAM blob (red > 200, blue < 80) is on the screen
    warm = (image[..., 2] > 200) & (image[..., 0] < 80) & (image[..., 1] < 120)
    assert warm.sum() > 100
