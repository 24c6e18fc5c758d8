"""Tests for medbundle.transforms.RandAffine2D(d): MONAI's RandAffine(d) semantics with OpenCV warping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Affine, Compose

from medbundle.checkpoints.rng_state import RNGState
from medbundle.imaging.affine import warp_affine
from medbundle.transforms import RandAffine2D, RandAffine2Dd

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"
CHANNELS = {"rsna": 1, "chest_xray": 1, "isic": 3, "classify": 1}  # channels of the cached image the augmentation sees
RANGES = {"rotate_range": 0.26, "scale_range": [0.1, 0.1], "translate_range": [6, 4]}


def image(shape: tuple[int, ...] = (1, 48, 40)) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[1], 0 : shape[2]]
    return np.broadcast_to(0.5 + 0.4 * np.sin(rows / 5.0) * np.cos(cols / 7.0), shape).astype(np.float32)


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_output_is_monai_affine_of_the_drawn_parameters(padding_mode):
    transform = RandAffine2Dd("image", prob=1.0, padding_mode=padding_mode, **RANGES).set_random_state(0)
    img = image((3, 40, 40))
    for _ in range(3):
        out = transform({"image": img})["image"]
        params = transform.rand_affine.params
        expected = Affine(rotate_params=params.rotate, scale_params=params.scale, translate_params=params.translate,
                          padding_mode=padding_mode, image_only=True)(torch.from_numpy(img)).numpy()
        assert np.abs(out - expected).max() < 2e-5


def test_prob_is_respected():
    img = image()
    never = RandAffine2Dd("image", prob=0.0, **RANGES)
    assert never({"image": img})["image"] is img
    always = RandAffine2D(prob=1.0, **RANGES).set_random_state(1)
    assert all(not np.array_equal(always(img), img) for _ in range(20))
    half = RandAffine2Dd("image", prob=0.5, **RANGES).set_random_state(2)
    applied = [half({"image": img})["image"] is not img for _ in range(400)]
    assert 0.42 < np.mean(applied) < 0.58


def test_parameters_stay_in_their_ranges():
    transform = RandAffine2D(prob=1.0, rotate_range=0.26, scale_range=0.1, translate_range=[6, 4]).set_random_state(3)
    draws = []
    for _ in range(200):
        transform.randomize()
        draws.append(transform.params)
    rotate = np.array([d.rotate for d in draws])
    scale = np.array([d.scale for d in draws])
    translate = np.array([d.translate for d in draws])
    assert np.abs(rotate).max() <= 0.26 and np.abs(rotate).max() > 0.2
    assert np.abs(scale[:, 0] - 1).max() <= 0.1 and np.all(scale[:, 1] == 1.0)  # MONAI: one number scales H only
    assert np.all(np.abs(translate) <= [6, 4]) and np.all(np.abs(translate).max(axis=0) > [5, 3])


def test_reproducible_with_set_random_state_and_compose():
    img = image()

    def run(transform) -> list[np.ndarray]:
        return [transform({"image": img})["image"] for _ in range(6)]

    first = run(RandAffine2Dd("image", prob=0.5, **RANGES).set_random_state(7))
    second = run(RandAffine2Dd("image", prob=0.5, **RANGES).set_random_state(7))
    other = run(RandAffine2Dd("image", prob=0.5, **RANGES).set_random_state(8))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))

    composed = [run(Compose([RandAffine2Dd("image", prob=0.5, **RANGES)]).set_random_state(5)) for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*composed))


def test_rng_state_handler_restores_the_augmentation():
    """A resumed run (medbundle.checkpoints.RNGState) continues with the augmentation it would have drawn."""
    chain = Compose([RandAffine2Dd("image", prob=0.5, **RANGES)]).set_random_state(9)
    img = image()
    chain({"image": img})
    state = RNGState(chain).state_dict()
    expected = [chain({"image": img})["image"] for _ in range(4)]
    chain.set_random_state(123)
    RNGState(chain).load_state_dict(state)
    assert all(np.array_equal(chain({"image": img})["image"], e) for e in expected)


def test_keeps_type_dtype_and_metadata():
    img = image()
    transform = RandAffine2D(prob=1.0, **RANGES)
    assert isinstance(transform(img), np.ndarray) and transform(img).dtype == np.float32
    tensor = torch.from_numpy(img)
    assert type(transform(tensor)) is torch.Tensor and transform(tensor).dtype == torch.float32
    assert transform(tensor.half()).dtype == torch.float16
    assert transform((img * 255).astype(np.uint8)).dtype == np.float32
    meta = MetaTensor(tensor, affine=torch.diag(torch.tensor([0.2, 0.3, 1.0, 1.0])), meta={"filename_or_obj": "a.png"})
    out = transform(meta)
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "a.png"
    torch.testing.assert_close(out.affine, meta.affine)  # not updated: training-only augmentation


def test_keys_share_the_draw_with_their_own_modes():
    mask = (image() > 0.5).astype(np.float32)
    transform = RandAffine2Dd(["image", "copy", "mask"], prob=1.0, mode=["bilinear", "bilinear", "nearest"],
                              padding_mode="zeros", **RANGES)
    out = transform({"image": image(), "copy": image(), "mask": mask, "label": 1})
    np.testing.assert_array_equal(out["image"], out["copy"])
    assert set(np.unique(out["mask"])) <= {0.0, 1.0} and out["label"] == 1
    np.testing.assert_array_equal(out["mask"], warp_affine(mask, transform.rand_affine.params, mode="nearest"))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        RandAffine2Dd("image", padding_mode="reflect")
    with pytest.raises(ValueError, match="rotate_range has 2 entries"):
        RandAffine2D(rotate_range=[0.1, 0.2])


@pytest.mark.parametrize("bundle", list(CHANNELS))
def test_bundles_augment_with_it(bundle):
    """train.yaml's random_transforms build RandAffine2Dd with the bundle's settings and run on an image of its size."""
    parser = ConfigParser()
    parser.read_config(BUNDLES / bundle / "configs" / "train.yaml")
    parser["bundle_root"] = str(BUNDLES / bundle)
    transforms = parser.get_parsed_content("random_transforms")
    affine = next(t for t in transforms if isinstance(t, RandAffine2Dd))
    assert affine.rand_affine.prob == 0.5 and len(affine.rand_affine.translate_range) == 2
    size = parser.get_parsed_content("image_size")
    chain = Compose(transforms).set_random_state(0)
    sample = {"image": torch.from_numpy(image((CHANNELS[bundle], *size))), "label": 0}
    for _ in range(4):
        out = chain(dict(sample))
        assert out["image"].shape == sample["image"].shape and out["image"].dtype == torch.float32


def test_isotropic_zooms_both_axes_by_one_factor_drawn_from_the_first_range():
    from medbundle.transforms import RandAffine2D

    plain = RandAffine2D(prob=1.0, scale_range=0.2).set_random_state(3)
    isotropic = RandAffine2D(prob=1.0, scale_range=0.2, isotropic=True).set_random_state(3)
    for _ in range(20):
        plain.randomize()
        isotropic.randomize()
        assert plain.params.scale[1] == 1.0 and 0.8 <= plain.params.scale[0] <= 1.2
        assert isotropic.params.scale[0] == isotropic.params.scale[1] == plain.params.scale[0]
