"""describe_preprocessing: a parsed transform chain as the plain steps of deploy.json."""

from __future__ import annotations

import pytest
from monai.data import PILReader
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    Resized,
    ScaleIntensityd,
)

from medbundle.export.preprocessing_spec import describe_preprocessing
from medbundle.io import GrayscaleReader, RGBReader
from medbundle.transforms import AspectResizePadd, CLAHEd


def test_steps_follow_the_chain_with_each_transforms_parameters_and_skip_layout_transforms():
    chain = Compose([
        LoadImaged("image", reader=RGBReader(), image_only=True),
        EnsureChannelFirstd("image"),
        Compose([Resized("image", spatial_size=[32, 48], mode="area"), CLAHEd("image", clip_limit=3.0)]),
        EnsureTyped("image", track_meta=False),
    ])
    assert describe_preprocessing(chain) == {
        "channels": 3,
        "spatial_size": [32, 48],
        "steps": [
            {"op": "read", "reference": "medbundle.io.RGBReader", "reader": "rgb", "channels": 3},
            {"op": "resize", "reference": "monai.transforms.Resize", "spatial_size": [32, 48], "size_mode": "all",
             "mode": "area", "align_corners": None, "anti_aliasing": False, "anti_aliasing_sigma": None},
            {"op": "clahe", "reference": "medbundle.transforms.CLAHE", "clip_limit": 3.0, "tile_grid_size": [8, 8],
             "bits": 8},
        ],
    }


def test_a_list_of_transforms_is_described_like_a_compose():
    transforms = [LoadImaged("image", reader=GrayscaleReader), AspectResizePadd("image", spatial_size=16)]
    described = describe_preprocessing(transforms)
    assert described["channels"] == 1 and described["spatial_size"] == [16, 16]
    assert described["steps"][1] == {"op": "aspect_resize_pad", "reference": "medbundle.transforms.AspectResizePad",
                                     "spatial_size": [16, 16], "pad_position": ["center", "end"],
                                     "padding_mode": "constant"}


def test_an_undescribed_transform_is_named():
    chain = [LoadImaged("image", reader=GrayscaleReader), ScaleIntensityd("image"), AspectResizePadd("image", 16)]
    with pytest.raises(ValueError, match="ScaleIntensityd has no deploy.json description.*STEP_DESCRIPTIONS"):
        describe_preprocessing(chain)


def test_a_reader_without_a_description_is_named():
    with pytest.raises(ValueError, match="reader PILReader"):
        describe_preprocessing([LoadImaged("image", reader=PILReader()), AspectResizePadd("image", 16)])


def test_a_chain_must_read_first_and_end_at_a_fixed_size():
    with pytest.raises(ValueError, match="must start by reading"):
        describe_preprocessing([AspectResizePadd("image", 16)])
    with pytest.raises(ValueError, match=r"must end with a fixed \[H, W\] size"):
        describe_preprocessing([LoadImaged("image", reader=GrayscaleReader), CLAHEd("image")])


def test_the_grayscale_readers_target_size_and_reduced_decode_are_described():
    reader = GrayscaleReader(target_size=(224, 224), reduced_decode=False)
    described = describe_preprocessing([LoadImaged("image", reader=reader), AspectResizePadd("image", 224)])
    assert described["steps"][0] == {"op": "read", "reference": "medbundle.io.GrayscaleReader", "reader": "grayscale",
                                     "channels": 1, "target_size": [224, 224], "reduced_decode": False}
    described = describe_preprocessing([LoadImaged("image", reader=GrayscaleReader), AspectResizePadd("image", 16)])
    assert described["steps"][0]["target_size"] is None and described["steps"][0]["reduced_decode"] is True
