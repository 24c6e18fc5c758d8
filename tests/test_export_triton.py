"""The Triton config.pbtxt of an exported ONNX model, and its model repository entry."""

from __future__ import annotations

import pytest

from medbundle.export.triton import triton_config, write_triton_model

SPEC = {"input": {"name": "image", "shape": [None, 1, 64, 32]}, "output": {"name": "logits", "shape": [None, 5]}}


def test_config_text_has_per_image_dims_under_a_max_batch_size():
    assert triton_config("chest_xray", SPEC, 32) == (
        'name: "chest_xray"\n'
        'platform: "onnxruntime_onnx"\n'
        "max_batch_size: 32\n"
        "input [\n"
        "  {\n"
        '    name: "image"\n'
        "    data_type: TYPE_FP32\n"
        "    dims: [ 1, 64, 32 ]\n"
        "  }\n"
        "]\n"
        "output [\n"
        "  {\n"
        '    name: "logits"\n'
        "    data_type: TYPE_FP32\n"
        "    dims: [ 5 ]\n"
        "  }\n"
        "]\n"
        "dynamic_batching { }\n"
    )


def test_bad_names_and_batch_sizes_are_refused():
    with pytest.raises(ValueError, match="may hold only letters"):
        triton_config("my model", SPEC, 8)
    with pytest.raises(ValueError, match="max_batch_size must be at least 1"):
        triton_config("model", SPEC, 0)


def test_repository_entry_holds_the_config_and_version_1(tmp_path):
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"onnx bytes")
    model = write_triton_model(tmp_path / "triton", "rsna", onnx_file, SPEC, 8)
    assert model == tmp_path / "triton" / "rsna"
    assert (model / "1" / "model.onnx").read_bytes() == b"onnx bytes"
    assert (model / "config.pbtxt").read_text() == triton_config("rsna", SPEC, 8)
