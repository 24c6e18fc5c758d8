"""The chest_xray data-path benchmark: its synthetic sources, its plain reference, and the command at tiny sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from monai.transforms import Compose

from medbundle.benchmarks.chest_xray import (
    PIPELINES,
    format_datalists,
    plain_reference,
    transform_profile,
    write_sources,
)
from medbundle.benchmarks.common import bundle_parser
from medbundle.data import CHEST_XRAY_CLASSES, chest_xray_datalist


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return write_sources(tmp_path_factory.mktemp("chest_xray"), n_images=6, source_shape=(300, 240))


def test_sources_are_8bit_png_and_jpeg_of_the_source_shape_in_the_bundle_layout(sources):
    lists = format_datalists(chest_xray_datalist(sources, "train"), n_images=10)
    assert list(lists) == ["png", "jpeg"] and [len(items) for items in lists.values()] == [6, 6]
    assert {item["label"] for item in lists["png"]} == set(range(len(CHEST_XRAY_CLASSES)))
    for item in (lists["png"][0], lists["jpeg"][0]):
        image = cv2.imread(item["image"], cv2.IMREAD_UNCHANGED)
        assert image.shape == (300, 240) and image.dtype == np.uint8 and image.std() > 10


def test_format_datalists_keeps_the_first_images_of_each_format_and_ignores_dicom():
    suffixes = [".dcm", ".PNG", ".jpeg", ".jpg", ".png"]
    data = [{"image": f"x/{i}{suffix}", "label": 0} for i, suffix in enumerate(suffixes)]
    lists = format_datalists(data, n_images=1)
    assert lists == {"png": [data[1]], "jpeg": [data[2]]}
    assert format_datalists(data[:1], n_images=5) == {}


@pytest.mark.parametrize("clahe", [False, True])
def test_plain_reference_matches_the_bundle_chain_to_rounding(sources, clahe):
    parser = bundle_parser("chest_xray", image_size=[64, 48], clahe=clahe)
    chain = Compose(parser.get_parsed_content("cached_transforms") + parser.get_parsed_content("uncached_transforms"))
    for item in format_datalists(chest_xray_datalist(sources, "train"), n_images=2)["png"]:
        plain = plain_reference(item["image"], [64, 48], clahe)
        bundle = np.asarray(chain(dict(item))["image"], np.float32)
        assert plain.shape == bundle.shape == (1, 64, 48) and plain.dtype == np.float32
        # the bundle resizes in float and rounds to 8 bits only for CLAHE, which may map a level rounded the other
        # way a few levels apart
        assert np.abs(plain - bundle).max() <= (6 if clahe else 1) / 255


def test_plain_reference_pads_evenly_around_the_resized_image(tmp_path):
    path = str(tmp_path / "wide.png")
    cv2.imwrite(path, np.full((100, 200), 255, np.uint8))
    image = plain_reference(path, [100, 100], clahe=False)[0]
    assert image.shape == (100, 100) and (image[25:75] == 1).all()
    assert (image[:25] == 0).all() and (image[75:] == 0).all()


def test_transform_profile_times_every_transform_in_order():
    transforms = [lambda d: {**d, "x": d["x"] + 1}, lambda d: {**d, "x": d["x"] * 2}]
    profile = transform_profile(transforms, [{"x": 1}, {"x": 2}])
    assert [name for name, _ in profile] == ["function", "function"] and all(ms >= 0 for _, ms in profile)


def test_chest_xray_benchmark_tables_every_pipeline_per_format(run_benchmark_in_process):
    out, data = run_benchmark_in_process("chest_xray", "--n_images", "12", "--source_shape", "[320,256]",
                                         "--image_size", "[64,64]", "--workers", "1", "--repeats", "1")
    assert ("| format | pipeline | workers | images/s | / plain | / no cache | images/CPU s | CPU: / plain "
            "| CPU: / no cache | peak RSS MiB |") in out
    for pipeline in PIPELINES:
        assert f"| png | {pipeline} | 1 |" in out and f"| jpeg | {pipeline} | 0 |" in out, pipeline
    rows = data["rows"]
    assert {(r["format"], r["pipeline"], r["workers"]) for r in rows} == {
        (f, p, w) for f in ("png", "jpeg") for p in PIPELINES for w in (0, 1)}
    assert all(r[key] > 0 for r in rows for key in ("images_per_s", "over_plain", "images_per_cpu_s", "cpu_over_plain"))
    for ratio in ("cached_over_uncached", "cpu_cached_over_uncached"):
        assert all((r[ratio] is not None) == ("cache read" in r["pipeline"]) for r in rows)
    assert "max abs difference" in out and "CPU ms per image: LoadImaged" in out and "target >= 20x" in out
    assert data["settings"]["image_size"] == [64, 64] and data["settings"]["images"] == {"png": 12, "jpeg": 12}
