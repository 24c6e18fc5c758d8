"""Tests of dataset normalisation statistics: values, parallel loading, file naming and reading."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
from monai.transforms import Compose, LoadImaged, Resized, ScaleIntensityRanged

from medbundle.data import norm_stats as norm_stats_module
from medbundle.data.norm_stats import compute_norm_stats, norm_stats_path, read_norm_stats, write_norm_stats

# mixed native resolutions, as in the chest X-ray data
SIZES = [(20, 30), (40, 25), (16, 12), (33, 33), (18, 50)]


def _chain(size: tuple[int, int] | None = (16, 12), scale: bool = True) -> Compose:
    """Decode + scale to [0, 1] + resize: the bundle's preprocessing in small."""
    transforms = [LoadImaged(keys="image", reader="PILReader", image_only=True, ensure_channel_first=True)]
    if scale:
        transforms.append(ScaleIntensityRanged(keys="image", a_min=0, a_max=255, b_min=0.0, b_max=1.0))
    if size is not None:
        transforms.append(Resized(keys="image", spatial_size=size, mode="area"))
    return Compose(transforms)


def _pngs(tmp_path, sizes=SIZES, color=False) -> tuple[list[dict], list[np.ndarray]]:
    """Write random PNGs with cv2; return the datalist and the pixel arrays as written (BGR for color)."""
    rng = np.random.default_rng(0)
    datalist, arrays = [], []
    for i, (height, width) in enumerate(sizes):
        array = rng.integers(0, 256, (height, width, 3) if color else (height, width), dtype=np.uint8)
        path = tmp_path / f"img{i}.png"
        assert cv2.imwrite(str(path), array)
        datalist.append({"image": str(path), "label": i % 2})
        arrays.append(array)
    return datalist, arrays


def test_stats_equal_numpy_over_the_stacked_transformed_images(tmp_path):
    datalist, _ = _pngs(tmp_path)
    chain = _chain()
    stacked = np.stack([np.asarray(chain(dict(item))["image"], dtype=np.float64) for item in datalist])
    stats = compute_norm_stats(datalist, chain, progress=False)
    assert stats["n_images"] == 5
    assert stats["image_shape"] == [16, 12]
    assert stats["mean"] == pytest.approx([stacked.mean()], abs=1e-12)
    assert stats["std"] == pytest.approx([stacked.std()], abs=1e-12)


def test_color_stats_are_per_channel_in_rgb_order(tmp_path):
    datalist, arrays = _pngs(tmp_path, sizes=[(10, 14)] * 3, color=True)
    rgb = np.stack(arrays)[..., ::-1].reshape(-1, 3) / 255.0
    stats = compute_norm_stats(datalist, _chain(size=None), progress=False)
    assert stats["image_shape"] == [14, 10]  # PILReader reads (W, H)
    # the transform scales in float32, hence the looser tolerance against float64 numpy
    assert stats["mean"] == pytest.approx(rgb.mean(axis=0).tolist(), abs=1e-6)
    assert stats["std"] == pytest.approx(rgb.std(axis=0).tolist(), abs=1e-6)


def test_worker_processes_give_the_same_numbers(tmp_path):
    datalist, _ = _pngs(tmp_path)
    serial = compute_norm_stats(datalist, _chain(), num_workers=0, progress=False)
    parallel = compute_norm_stats(datalist, _chain(), num_workers=2, progress=False)
    assert parallel == serial


def test_unreadable_image_is_named(tmp_path):
    datalist, _ = _pngs(tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    datalist.append({"image": str(broken)})
    with pytest.raises(RuntimeError, match=r"1 of 6 images could not be read.*broken\.png.*Fix or remove"):
        compute_norm_stats(datalist, _chain(), num_workers=2, progress=False)


def test_unresized_or_unscaled_images_are_refused(tmp_path):
    datalist, _ = _pngs(tmp_path)
    with pytest.raises(ValueError, match=r"img1\.png becomes .* must resize every image to one size"):
        compute_norm_stats(datalist, _chain(size=None), progress=False)
    with pytest.raises(ValueError, match=r"expected \[0, 1\]; add intensity scaling"):
        compute_norm_stats(datalist, _chain(scale=False), progress=False)
    with pytest.raises(ValueError, match="empty datalist"):
        compute_norm_stats([], _chain(), progress=False)


def test_path_names_the_input_size(tmp_path):
    assert norm_stats_path(tmp_path, 224) == tmp_path / "norm_stats_224x224.json"
    assert norm_stats_path(str(tmp_path), (384, 320)) == tmp_path / "norm_stats_384x320.json"
    assert norm_stats_path(tmp_path, 224, clahe=True) == tmp_path / "norm_stats_224x224_clahe.json"


def test_write_read_round_trip_leaves_no_temporary_file(tmp_path):
    stats = {"mean": [0.51, 0.49, 0.48], "std": [0.25, 0.24, 0.26], "n_images": 3, "image_shape": [224, 224]}
    path = norm_stats_path(tmp_path, 224)
    write_norm_stats(stats, path)
    write_norm_stats({**stats, "n_images": 4}, path)
    assert read_norm_stats(path) == {**stats, "n_images": 4}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    stats = {"mean": [0.5], "std": [0.2], "n_images": 1, "image_shape": [8, 8]}
    path = norm_stats_path(tmp_path, 8)
    write_norm_stats(stats, path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(norm_stats_module.json, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_norm_stats({**stats, "n_images": 2}, path)
    monkeypatch.undo()
    assert read_norm_stats(path) == stats
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_missing_file_returns_none_and_logs_the_command_once(tmp_path, caplog):
    path = norm_stats_path(tmp_path, 224)
    with caplog.at_level(logging.INFO, logger="medbundle.data.norm_stats"):
        assert read_norm_stats(path) is None
        assert read_norm_stats(path) is None
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(messages) == 1
    assert f"medbundle norm_stats --data {tmp_path} --image_size 224" in messages[0]
    assert "pretrained" in messages[0]


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps([0.5]), json.dumps({"mean": [0.5], "std": [0.0], "n_images": 1, "image_shape": [8, 8]})],
)
def test_malformed_file_names_it_and_says_to_recreate(tmp_path, content):
    path = norm_stats_path(tmp_path, 384)
    path.write_text(content)
    with pytest.raises(ValueError, match=r"norm_stats_384x384\.json .*delete it and re-run: medbundle norm_stats"):
        read_norm_stats(path)
