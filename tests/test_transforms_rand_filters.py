"""Tests for medbundle.transforms' RandGaussianSmooth2D(d), RandGaussianNoise2D(d) and RandGridDistortion2D(d)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose, GaussianSmooth, GridDistortion

from medbundle.checkpoints.rng_state import RNGState
from medbundle.transforms import (
    RandGaussianNoise2D,
    RandGaussianNoise2Dd,
    RandGaussianSmooth2D,
    RandGaussianSmooth2Dd,
    RandGridDistortion2D,
    RandGridDistortion2Dd,
)

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def image(shape: tuple[int, ...] = (1, 48, 40)) -> np.ndarray:
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def every_transform(prob: float) -> list:
    return [
        RandGaussianSmooth2Dd("image", sigma_x=(0.5, 1.5), sigma_y=(0.5, 1.5), prob=prob),
        RandGaussianNoise2Dd("image", std=0.02, prob=prob),
        RandGridDistortion2Dd("image", num_cells=5, distort_limit=0.1, prob=prob),
    ]


@pytest.mark.parametrize("shape", [(1, 64, 48), (3, 40, 40)])
def test_smooth_is_monai_gaussian_smooth_of_the_drawn_sigmas(shape):
    transform = RandGaussianSmooth2Dd("image", sigma_x=(0.5, 1.5), sigma_y=(0.5, 1.5), prob=1.0).set_random_state(0)
    img = image(shape)
    for _ in range(4):
        out = transform({"image": img})["image"]
        expected = GaussianSmooth(sigma=transform.transform.sigma)(torch.from_numpy(img)).numpy()
        assert np.abs(out - expected).max() <= 1e-5


def test_smooth_sigmas_cover_their_ranges():
    transform = RandGaussianSmooth2D(sigma_x=(0.5, 1.5), sigma_y=(0.25, 0.75), prob=1.0).set_random_state(1)
    draws = []
    for _ in range(300):
        transform.randomize()
        draws.append(transform.sigma)
    sigma = np.array(draws)
    assert np.all(sigma.min(axis=0) >= [0.5, 0.25]) and np.all(sigma.max(axis=0) <= [1.5, 0.75])
    assert np.all(sigma.min(axis=0) < [0.52, 0.27]) and np.all(sigma.max(axis=0) > [1.48, 0.73])


def test_noise_has_monai_distribution():
    img = np.full((1, 256, 256), 0.5, dtype=np.float32)
    fixed = RandGaussianNoise2D(prob=1.0, mean=0.1, std=0.02, sample_std=False).set_random_state(2)
    noise = fixed(img) - img
    assert abs(noise.mean() - 0.1) < 5e-4 and abs(noise.std() - 0.02) < 5e-4
    sampled = RandGaussianNoise2D(prob=1.0, std=0.02).set_random_state(3)  # MONAI's default: std ~ U[0, std]
    stds = np.array([(sampled(img) - img).std() for _ in range(100)])
    assert stds.max() <= 0.0201 and 0.008 < stds.mean() < 0.012 and stds.min() < 0.002


def test_noise_is_shared_by_the_keys_of_a_sample():
    transform = RandGaussianNoise2Dd(["image", "copy"], prob=1.0, std=0.1).set_random_state(4)
    out = transform({"image": image(), "copy": image()})
    np.testing.assert_array_equal(out["image"], out["copy"])
    second = transform({"image": image(), "copy": image()})
    assert not np.array_equal(second["image"], out["image"])


@pytest.mark.parametrize("padding_mode", ["border", "zeros", "reflection"])
def test_grid_distortion_is_monai_grid_distortion_of_the_drawn_steps(padding_mode):
    transform = RandGridDistortion2Dd("image", num_cells=5, prob=1.0, distort_limit=0.1,
                                      padding_mode=padding_mode).set_random_state(5)
    img = image((1, 64, 48))
    for _ in range(3):
        out = transform({"image": img})["image"]
        steps = transform.transform.distort_steps
        expected = GridDistortion(num_cells=5, distort_steps=steps, padding_mode=padding_mode)(
            torch.from_numpy(img)
        ).numpy()
        assert np.abs(out - expected).max() <= 1e-5


def test_grid_steps_are_drawn_in_the_limit():
    transform = RandGridDistortion2D(num_cells=(5, 3), prob=1.0, distort_limit=0.1).set_random_state(6)
    steps = []
    for _ in range(100):
        transform.randomize()
        assert [len(s) for s in transform.distort_steps] == [6, 4]
        steps.extend(transform.distort_steps[0] + transform.distort_steps[1])
    assert 0.9 <= min(steps) < 0.91 and 1.09 < max(steps) <= 1.1
    assert RandGridDistortion2D(distort_limit=(0.2, -0.1)).distort_limit == (-0.1, 0.2)


@pytest.mark.parametrize("index", range(3))
def test_prob_is_respected(index):
    img = image()
    assert every_transform(0.0)[index]({"image": img})["image"] is img
    always = every_transform(1.0)[index].set_random_state(7)
    assert all(not np.array_equal(always({"image": img})["image"], img) for _ in range(10))
    half = every_transform(0.5)[index].set_random_state(8)
    applied = [half({"image": img})["image"] is not img for _ in range(400)]
    assert 0.42 < np.mean(applied) < 0.58


def test_reproducible_with_set_random_state_compose_and_rng_state():
    img = image()

    def run(chain) -> list[np.ndarray]:
        return [chain({"image": img})["image"] for _ in range(6)]

    first = run(Compose(every_transform(0.5)).set_random_state(9))
    second = run(Compose(every_transform(0.5)).set_random_state(9))
    other = run(Compose(every_transform(0.5)).set_random_state(10))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))

    chain = Compose(every_transform(0.5)).set_random_state(11)
    chain({"image": img})
    state = RNGState(chain).state_dict()
    expected = run(chain)
    chain.set_random_state(123)
    RNGState(chain).load_state_dict(state)
    assert all(np.array_equal(a, b) for a, b in zip(run(chain), expected))


@pytest.mark.parametrize(
    "transform",
    [RandGaussianSmooth2D(prob=1.0), RandGaussianNoise2D(prob=1.0), RandGridDistortion2D(prob=1.0, distort_limit=0.1)],
    ids=["smooth", "noise", "grid"],
)
def test_keeps_type_dtype_and_metadata(transform):
    img = image()
    assert isinstance(transform(img), np.ndarray) and transform(img).dtype == np.float32
    tensor = torch.from_numpy(img)
    assert type(transform(tensor)) is torch.Tensor and transform(tensor).dtype == torch.float32
    assert transform(tensor.half()).dtype == torch.float16
    assert transform((img * 255).astype(np.uint8)).dtype == np.float32
    meta = MetaTensor(tensor, affine=torch.diag(torch.tensor([0.2, 0.3, 1.0, 1.0])), meta={"filename_or_obj": "a.png"})
    out = transform(meta)
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "a.png"
    torch.testing.assert_close(out.affine, meta.affine)
    np.testing.assert_array_equal(tensor.numpy(), img)  # the input is not changed in place


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="sigma_x must be a \\(min, max\\) pair"):
        RandGaussianSmooth2Dd("image", sigma_x=1.0)
    with pytest.raises(ValueError, match="0 < min <= max"):
        RandGaussianSmooth2D(sigma_y=(1.5, 0.5))
    with pytest.raises(ValueError, match="approx must be one of"):
        RandGaussianSmooth2D(approx="scalespace")
    with pytest.raises(ValueError, match="std must be"):
        RandGaussianNoise2Dd("image", std=-0.1)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        RandGridDistortion2Dd("image", padding_mode="reflect")
    with pytest.raises(ValueError, match="num_cells must be positive"):
        RandGridDistortion2D(num_cells=0)


def test_rsna_augments_with_them():
    """rsna's random_transforms build these with the bundle's settings and run on an image of its size."""
    parser = ConfigParser()
    parser.read_config(BUNDLES / "rsna" / "configs" / "train.yaml")
    parser["bundle_root"] = str(BUNDLES / "rsna")
    transforms = parser.get_parsed_content("random_transforms")
    smooth = next(t for t in transforms if isinstance(t, RandGaussianSmooth2Dd)).transform
    noise = next(t for t in transforms if isinstance(t, RandGaussianNoise2Dd)).transform
    grid = next(t for t in transforms if isinstance(t, RandGridDistortion2Dd)).transform
    assert smooth.prob == noise.prob == grid.prob == 0.2
    assert smooth.sigma_x == smooth.sigma_y == (0.5, 1.5)
    assert noise.std == 0.02 and noise.sample_std
    assert grid.num_cells == (5, 5) and grid.distort_limit == (-0.1, 0.1) and grid.padding_mode == "border"
    size = parser.get_parsed_content("image_size")
    chain = Compose(transforms).set_random_state(0)
    sample = {"image": torch.from_numpy(image((1, *size))), "label": 0}
    for _ in range(4):
        out = chain(dict(sample))
        assert out["image"].shape == sample["image"].shape and out["image"].dtype == torch.float32
