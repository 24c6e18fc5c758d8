"""Grad-CAM evidence maps (medbundle.explain) and ``medbundle explain``."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom
import pytest
import torch

from medbundle.demo import write_classify_demo
from medbundle.explain import explain_batch, gradcam_maps, overlay, target_layer
from medbundle.export import load_bundle_network
from medbundle.networks import TimmClassifier
from medbundle.transforms import AspectResizePad

REPO = Path(__file__).resolve().parents[1]
SIZE = 96  # resnet10t's layer4 is 3x3 here: at 64 px its 2x2 map cannot point at a blob


@pytest.mark.parametrize(
    ("backbone", "layer"),
    [
        ("resnet10t", "backbone.layer4"),
        ("efficientnet_b0", "backbone.bn2"),
        ("tf_efficientnet_lite0", "backbone.bn2"),
        ("convnext_atto", "backbone.stages.3"),
        ("mobilenetv3_small_050", "backbone.blocks.5"),
    ],
)
def test_the_target_layer_is_chosen_per_timm_family(backbone, layer):
    network = TimmClassifier(backbone, num_classes=3, in_chans=1)
    assert target_layer(network) == layer
    assert target_layer(network.backbone) == layer.removeprefix("backbone.")
    maps = gradcam_maps(network, torch.rand(2, 1, 64, 48))
    assert maps.shape == (2, 64, 48) and maps.dtype == np.float32 and 0 <= maps.min() and maps.max() <= 1


def test_an_unlisted_family_gets_its_last_4d_feature_map_and_a_vit_names_the_key():
    assert target_layer(TimmClassifier("dla34", in_chans=1)) == "backbone.level5"
    with pytest.raises(ValueError, match="set target_layer"):
        target_layer(TimmClassifier("vit_tiny_patch16_224", in_chans=1))


def test_target_layer_overrides_and_a_wrong_one_is_named():
    network = TimmClassifier("resnet10t", num_classes=2, in_chans=3)
    maps = gradcam_maps(network, torch.rand(3, 3, 64, 64), class_index=[0, 1, 1], target_layer="backbone.layer3")
    assert maps.shape == (3, 64, 64)
    with pytest.raises(ValueError, match="'backbone.layer9' is not a module"):
        gradcam_maps(network, torch.rand(1, 3, 64, 64), target_layer="backbone.layer9")
    with pytest.raises(ValueError, match="class_index 2 does not fit"):
        gradcam_maps(network, torch.rand(1, 3, 64, 64), class_index=2)
    hooks = dict(network.named_modules())["backbone.layer3"]
    assert not hooks._forward_hooks and not hooks._backward_hooks  # MONAI's hooks do not stay behind


def test_overlay_is_rgb_uint8_of_the_image_shape():
    image = np.zeros((1, 20, 30), np.float32)
    cam = np.zeros((20, 30), np.float32)
    cam[5:10, 5:10] = 1
    picture = overlay(image, cam)
    assert picture.shape == (20, 30, 3) and picture.dtype == np.uint8
    assert picture[7, 7, 0] > picture[15, 25, 0]  # JET: red where the map is high
    with pytest.raises(ValueError, match="the map has shape"):
        overlay(image, cam[:10])


def _stored_image(path: Path) -> np.ndarray:
    if path.suffix == ".dcm":
        return pydicom.dcmread(path).pixel_array
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """resnet10t trained on the binary classify demo (a bright blob in malignant images) through the classify
    bundle's inference preprocessing, saved as the bundle's checkpoint; and each malignant image's blob mask in
    the network's view."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("explain")
    demo = write_classify_demo(root / "demo", n_patients=40, n_test=0, size_range=(64, 96))
    config = {"task": "classify", "backbone": "resnet10t", "head": "linear", "head_hidden": 16, "in_chans": 1,
              "num_classes": 1, "class_names": ["benign", "malignant"], "color": False, "image_size": [SIZE, SIZE],
              "reduced_decode": True}  # fmt: skip
    network = TimmClassifier("resnet10t", num_classes=1, in_chans=1)
    checkpoint = root / "model.pt"
    torch.save({"model": network.state_dict(), "config": config}, checkpoint)
    preprocessing = load_bundle_network(REPO / "bundles" / "classify", checkpoint).parser.get_parsed_content("preprocessing")
    rows = pd.read_csv(demo["labels_csv"])
    paths = [root / "demo" / image for image in rows["image"]]
    images = torch.stack([torch.as_tensor(preprocessing({"image": str(path)})["image"]).float() for path in paths])
    labels = torch.tensor((rows["label"] == "malignant").to_numpy(), dtype=torch.float32)
    optimizer = torch.optim.AdamW(network.parameters(), 1e-3)
    for _ in range(20):  # until it separates the training images (about 8 epochs), the first to find the blob
        network.train()
        for batch in torch.randperm(len(images)).split(16):
            flipped = torch.where(torch.rand(len(batch), 1, 1, 1) < 0.5, images[batch].flip(-1), images[batch])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(network(flipped)[:, 0], labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            if ((network(images)[:, 0] > 0) == (labels > 0.5)).float().mean() >= 0.95:
                break
    torch.save({"model": network.state_dict(), "config": config}, checkpoint)
    resize = AspectResizePad(SIZE, pad_position="center")
    positives, masks = [], []
    for index, image in enumerate(rows["image"]):
        if image in demo["lesions"]:
            height, width = _stored_image(paths[index]).shape[:2]
            row, col, radius = demo["lesions"][image]
            yy, xx = np.mgrid[0:height, 0:width]
            disc = ((yy - row) ** 2 + (xx - col) ** 2 <= radius**2).astype(np.float32)[None]
            positives.append(index)
            masks.append(resize(disc)[0] > 0.5)
    return {"network": network, "checkpoint": checkpoint, "images": images, "labels": labels, "paths": paths,
            "positives": positives, "masks": np.stack(masks)}  # fmt: skip


def test_maps_of_a_model_trained_on_the_demo_are_brightest_on_the_planted_lesion(trained):
    network, positives, masks = trained["network"], trained["positives"], trained["masks"]
    with torch.no_grad():
        probabilities = torch.sigmoid(network(trained["images"]))[:, 0]
    assert ((probabilities > 0.5) == (trained["labels"] > 0.5)).float().mean() >= 0.95  # it learnt the blob
    true_positives = [i for i, index in enumerate(positives) if probabilities[index] > 0.5]
    maps = gradcam_maps(network, trained["images"][[positives[i] for i in true_positives]])
    masks = masks[true_positives]
    assert maps.shape == (len(true_positives), SIZE, SIZE) and maps.min() >= 0 and maps.max() <= 1
    assert all(m.std() > 0 for m in maps)
    inside = np.array([cam[mask].mean() for cam, mask in zip(maps, masks)])
    outside = np.array([cam[~mask].mean() for cam, mask in zip(maps, masks)])
    assert inside.mean() > outside.mean() + 0.2
    pictures = explain_batch(network, trained["images"][positives[:2]], ["a", "b"], [0.9, 0.8], tile_height=64)
    assert len(pictures) == 2 and pictures[0].ndim == 3 and pictures[0].shape[2] == 3


def test_the_explain_command_writes_a_png_per_image_and_the_csv(trained, tmp_path):
    images = [str(trained["paths"][index]) for index in trained["positives"][:2]]
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "medbundle", "explain", "--bundle", str(REPO / "bundles" / "classify"),
               "--checkpoint", str(trained["checkpoint"]), "--images", *images, "--out", str(out)]  # fmt: skip
    subprocess.run(command, check=True, env=env, capture_output=True, timeout=120)
    with (out / "explain.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["image"] for row in rows] == images
    assert [row["image_id"] for row in rows] == [Path(image).stem for image in images]
    assert {row["class"] for row in rows} == {"malignant"}
    for row in rows:
        assert 0 <= float(row["probability"]) <= 1
        picture = cv2.imread(row["png"])
        assert picture is not None and picture.shape[1] > picture.shape[0]  # the input beside the overlay
