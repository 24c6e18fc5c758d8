"""check_parity: maxima per format, input kind and batch size; parity.json; a clear error above the tolerance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medbundle.export.parity import ParityError, check_parity, image_batch, runners


class Affine(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).sum(1, keepdim=True) * 0.5 - 1.0


def batches() -> dict:
    generator = torch.Generator().manual_seed(0)
    return {"random": {size: torch.rand(size, 1, 4, 4, generator=generator) for size in (1, 4)}}


def exact(x: torch.Tensor) -> np.ndarray:
    return Affine()(x).numpy()


def test_reports_the_largest_difference_per_format_kind_and_batch(tmp_path):
    def off(x: torch.Tensor) -> np.ndarray:
        return exact(x) + np.arange(len(x), dtype=np.float32)[:, None] * 1e-5

    report = check_parity(Affine(), {"ts": exact, "onnx": off}, batches(), tolerance=1e-4, out=tmp_path)
    assert report["passed"] and report["tolerance"] == 1e-4
    assert report["max_abs_diff"]["ts"] == {"random": {"1": 0.0, "4": 0.0}}
    assert report["max_abs_diff"]["onnx"]["random"]["1"] == 0.0
    assert report["max_abs_diff"]["onnx"]["random"]["4"] == pytest.approx(3e-5, rel=1e-2)
    assert json.loads((tmp_path / "parity.json").read_text()) == report


def test_a_difference_above_the_tolerance_raises_naming_it_after_writing_the_report(tmp_path):
    with pytest.raises(ParityError, match=r"more than 0\.0001: onnx random batch 1: 0\.01; onnx random batch 4: 0\.01"):
        check_parity(Affine(), {"onnx": lambda x: exact(x) + 0.01}, batches(), out=tmp_path)
    assert json.loads((tmp_path / "parity.json").read_text())["passed"] is False


def test_nan_logits_fail_and_a_wrong_shape_is_named():
    with pytest.raises(ParityError, match="nan"):
        check_parity(Affine(), {"onnx": lambda x: exact(x) * np.nan}, batches())
    with pytest.raises(ParityError, match=r"ts returned logits of shape \(1, 2\), eager \(1, 1\)"):
        check_parity(Affine(), {"ts": lambda x: np.zeros((len(x), 2), np.float32)}, batches())


def test_runners_load_torchscript_and_onnx_files(tmp_path):
    x = torch.rand(3, 1, 4, 4)
    torch.jit.trace(Affine(), x).save(str(tmp_path / "model.ts"))
    torch.onnx.export(Affine(), (x,), str(tmp_path / "model.onnx"), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    made = runners({"ts": tmp_path / "model.ts", "onnx": tmp_path / "model.onnx"}, threads=1)
    for run in made.values():
        np.testing.assert_allclose(run(x[:2]), exact(x[:2]), atol=1e-6)
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        runners({"tflite": tmp_path / "model.tflite"})


def test_image_batch_repeats_the_images_to_fill_the_batch():
    seen = []

    def preprocessing(item: dict) -> dict:
        seen.append(item["image"])
        return {"image": torch.full((1, 2, 2), float(len(seen)))}

    batch = image_batch(preprocessing, ["a.png", "b.png"], 4)
    assert seen == ["a.png", "b.png", "a.png", "b.png"] and batch.shape == (4, 1, 2, 2) and batch.dtype == torch.float32
    with pytest.raises(ValueError, match="no parity images"):
        image_batch(preprocessing, [], 1)
