from __future__ import annotations

import logging

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from monai.data import MetaTensor

from medbundle.demo.rsna import HARD_CASE_KINDS, write_rsna_demo
from medbundle.imaging import aspect_resize_pad
from medbundle.io import read_dicom
from medbundle.transforms import BreastCrop, BreastCropd, breast_crop

H, W = 1200, 960
BREAST = (200, 1000, 0, 420)  # y0, y1, x0, x1 (end-exclusive) of the half-ellipse
LABEL = (60, 110, 760, 900)  # burned-in text block in the far (top-right) corner
MARGIN = 16
# the mask is found on a copy downscaled to 256 px, so the box may be off by one working pixel
TOL = int(np.ceil(max(H, W) / 256))


def synthetic_mammogram(label: bool = True, bridge: bool = False) -> np.ndarray:
    """Half-ellipse breast against the left edge, optional label and thin line joining them."""
    yy, xx = np.mgrid[0:H, 0:W]
    cy, ry = (BREAST[0] + BREAST[1]) / 2, (BREAST[1] - BREAST[0]) / 2
    rx = BREAST[3]
    inside = ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5) / rx) ** 2 <= 1.0
    img = np.where(inside, 0.45 + 0.1 * np.sin(xx / 15.0) * np.cos(yy / 23.0), 0.0)
    if label:
        img[LABEL[0] : LABEL[1], LABEL[2] : LABEL[3]] = 1.0
    if bridge:  # 4 px wide L-shaped line from inside the breast to the label
        img[LABEL[1] - 4 : LABEL[1], 200 : LABEL[2]] = 1.0
        img[LABEL[1] - 4 : 400, 200:204] = 1.0
    return img[None].astype(np.float32)


def content_box(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img[0] > 0)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


def assert_tight(box, target, margin=MARGIN, width=W):
    y0, y1, x0, x1 = box
    t0, t1, s0, s1 = target
    assert t0 - margin - TOL <= y0 <= t0 - margin + TOL
    assert t1 + margin - TOL <= y1 <= t1 + margin + TOL
    assert max(0, s0 - margin - TOL) <= x0 <= max(0, s0 - margin + TOL)
    assert min(width, s1 + margin - TOL) <= x1 <= min(width, s1 + margin + TOL)


def test_box_contains_breast_excludes_label_and_is_tight():
    img = synthetic_mammogram()
    box = BreastCrop(margin=MARGIN).compute_bounding_box(img)
    assert box is not None
    y0, y1, x0, x1 = box
    assert y0 <= BREAST[0] and y1 >= BREAST[1] and x0 <= BREAST[2] and x1 >= BREAST[3]
    assert x1 <= LABEL[2] or y1 <= LABEL[0] or y0 >= LABEL[1]  # no overlap with the label
    assert_tight(box, BREAST)

    out = BreastCrop(margin=MARGIN)(img)
    assert out.shape == (1, y1 - y0, x1 - x0)
    np.testing.assert_array_equal(out, img[:, y0:y1, x0:x1])
    assert out.max() < 1.0  # label pixels are all 1.0, breast pixels below 0.56


def test_margin_is_applied():
    img = synthetic_mammogram()
    assert_tight(BreastCrop(margin=0).compute_bounding_box(img), BREAST, margin=0)
    assert_tight(BreastCrop(margin=40).compute_bounding_box(img), BREAST, margin=40)


def test_breast_on_right_side():
    img = np.ascontiguousarray(synthetic_mammogram()[..., ::-1])
    mirrored = (BREAST[0], BREAST[1], W - BREAST[3], W - BREAST[2])
    assert_tight(BreastCrop(margin=MARGIN).compute_bounding_box(img), mirrored)


@pytest.mark.parametrize("opening_size", [0, 5])
def test_label_joined_by_thin_line_left_out(opening_size):
    """The opening cuts the line; without it, the label is still a marker and the line a thin border piece."""
    img = synthetic_mammogram(bridge=True)
    assert_tight(BreastCrop(margin=MARGIN, opening_size=opening_size).compute_bounding_box(img), BREAST)


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_blank_image_unchanged(noise):
    img = np.abs(np.random.default_rng(0).normal(0.0, noise, (1, H, W))).astype(np.float32)
    cropper = BreastCrop()
    assert cropper.compute_bounding_box(img) is None
    assert cropper(img) is img


def test_faint_background_below_floor_unchanged():
    # detector non-uniformity: Otsu alone would split this gradient and crop half the image
    img = np.broadcast_to(np.linspace(0.0, 0.04, W, dtype=np.float32), (1, H, W)).copy()
    assert BreastCrop(min_threshold=0.0).compute_bounding_box(img) is not None
    assert BreastCrop()(img) is img


def test_numpy_torch_metatensor_agree():
    img = synthetic_mammogram()
    affine = torch.diag(torch.tensor([0.1, 0.2, 1.0, 1.0], dtype=torch.float64))
    meta = MetaTensor(torch.from_numpy(img.copy()), affine=affine.clone(), meta={"patient_id": "p1"})
    cropper = BreastCrop()
    out_np = cropper(img)
    out_t = cropper(torch.from_numpy(img.copy()))
    out_m = cropper(meta)
    assert isinstance(out_np, np.ndarray) and out_np.flags["C_CONTIGUOUS"]
    assert type(out_t) is torch.Tensor
    assert isinstance(out_m, MetaTensor) and out_m.meta["patient_id"] == "p1"
    np.testing.assert_array_equal(out_np, out_t.numpy())
    np.testing.assert_array_equal(out_np, out_m.numpy())
    # world position of an output pixel is the one of the input pixel it came from
    y0, _, x0, _ = cropper.compute_bounding_box(img)
    expected = affine @ torch.tensor([y0 + 3.0, x0 + 5.0, 0.0, 1.0], dtype=torch.float64)
    got = out_m.affine @ torch.tensor([3.0, 5.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(meta.affine, affine)  # input untouched


def test_multichannel_uses_channel_mean():
    img = np.concatenate([synthetic_mammogram()] * 3)
    out = BreastCrop()(img)
    assert out.shape[0] == 3
    np.testing.assert_array_equal(out[0], BreastCrop()(img[:1])[0])


def test_dict_crops_all_keys_with_source_box():
    img = synthetic_mammogram()
    mask = np.zeros_like(img)
    mask[0, 500:600, 100:200] = 1.0
    y0, y1, x0, x1 = BreastCrop().compute_bounding_box(img)
    out = BreastCropd(keys=["image", "mask"])({"image": img, "mask": mask, "label": 1})
    np.testing.assert_array_equal(out["image"], img[:, y0:y1, x0:x1])
    np.testing.assert_array_equal(out["mask"], mask[:, y0:y1, x0:x1])
    assert out["label"] == 1
    # an explicit source key takes precedence over the key order
    out = BreastCropd(keys=["mask", "image"], source_key="image")({"image": img, "mask": mask})
    np.testing.assert_array_equal(out["mask"], mask[:, y0:y1, x0:x1])


def test_dict_missing_keys():
    img = synthetic_mammogram()
    with pytest.raises(KeyError):
        BreastCropd(keys=["image", "mask"])({"image": img})
    out = BreastCropd(keys=["mask", "image"], allow_missing_keys=True)({"image": img})
    assert out["image"].shape == BreastCrop()(img).shape
    assert BreastCropd(keys="image", source_key="other", allow_missing_keys=True)({"image": img})["image"] is img
    with pytest.raises(KeyError):
        BreastCropd(keys="image", source_key="other")({"image": img})


# ---------------------------------------------------------------------------------- hard cases
# A breast on the left (mirrored for the right side) with a faint fatty edge, on a black
# detector background or a grey film base, plus what scanned films and labels add.

Box = tuple[int, int, int, int]


def breast(pectoral: bool = False, background: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Image and true mask of a half-elliptic breast on the left; fatty tissue fades to 0.15
    above the background at the skin. `pectoral` adds an MLO-like muscle reaching the top edge."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cy, ry, rx = (BREAST[0] + BREAST[1]) / 2, (BREAST[1] - BREAST[0]) / 2, BREAST[3]
    r2 = ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5) / rx) ** 2
    mask = r2 <= 1.0
    tissue = 0.15 + 0.45 * (1.0 - r2) + 0.05 * np.sin(xx / 15.0) * np.cos(yy / 23.0)
    if pectoral:
        muscle = (xx / 300.0 + yy / 600.0) <= 1.0
        tissue = np.where(muscle, 0.8, tissue)
        mask |= muscle
    img = np.where(mask, background + tissue, background).astype(np.float32)
    return img, mask


def add_label(img: np.ndarray, box: Box, text: str = "MED-LAT CRAN") -> None:
    """Bright film label with dark text."""
    y0, y1, x0, x1 = box
    ink = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.putText(ink, text, (4, round(0.75 * (y1 - y0))), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 255, 3)
    img[y0:y1, x0:x1] = np.where(ink > 0, 0.1, 1.0)


def add_ruler(img: np.ndarray, box: Box) -> None:
    """Bright ruler with dark tick marks every 20 px across half its width."""
    y0, y1, x0, x1 = box
    img[y0:y1, x0:x1] = 0.95
    if x1 - x0 > y1 - y0:
        img[y0 : (y0 + y1) // 2, x0:x1:20] = 0.1
    else:
        img[y0:y1:20, x0 : (x0 + x1) // 2] = 0.1


def mirror(img: np.ndarray, mask: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, np.ndarray, list[Box]]:
    """The scene seen with the chest wall on the right."""
    return img[:, ::-1].copy(), mask[:, ::-1].copy(), [(y0, y1, W - x1, W - x0) for y0, y1, x0, x1 in boxes]


def box_mask(boxes: list[Box]) -> np.ndarray:
    out = np.zeros((H, W), bool)
    for y0, y1, x0, x1 in boxes:
        out[y0:y1, x0:x1] = True
    return out


def assert_breast_kept_and_artifacts_left_out(img, mask, artifacts, beyond=0):
    """>= 98% of the breast inside the box, no artifact pixel inside it except within `beyond`
    pixels of the breast's bounding box (where a band touching the breast is part of it)."""
    box = BreastCrop(margin=MARGIN).compute_bounding_box(img[None])
    assert box is not None
    y0, y1, x0, x1 = box
    inside = np.zeros((H, W), bool)
    inside[y0:y1, x0:x1] = True
    assert (mask & inside).sum() >= 0.98 * mask.sum(), box
    ys, xs = np.nonzero(mask)
    near = np.zeros((H, W), bool)
    reach = MARGIN + TOL + beyond
    near[max(0, ys.min() - reach) : ys.max() + 1 + reach, max(0, xs.min() - reach) : xs.max() + 1 + reach] = True
    stray = box_mask(artifacts) & inside & ~near & ~mask
    assert not stray.any(), (box, np.argwhere(stray)[:3])


SIDES = pytest.mark.parametrize("side", ["left", "right"])


def scene(side: str, img: np.ndarray, mask: np.ndarray, boxes: list[Box]):
    """The scene as drawn (chest wall on the left) or mirrored."""
    return (img, mask, boxes) if side == "left" else mirror(img, mask, boxes)


@SIDES
@pytest.mark.parametrize("place", ["beyond_nipple", "above", "chest_wall_corner"])
def test_text_label_near_the_breast_left_out(side, place):
    img, mask = breast()
    label = {
        "beyond_nipple": (560, 610, 470, 720),  # 50 px past the nipple
        "above": (110, 160, 150, 400),  # 40 px above the breast
        "chest_wall_corner": (1080, 1130, 10, 260),  # below the breast, against the chest wall
    }[place]
    add_label(img, label)
    img, mask, boxes = scene(side, img, mask, [label])
    assert_breast_kept_and_artifacts_left_out(img, mask, boxes)


@SIDES
@pytest.mark.parametrize("pectoral", [False, True])
def test_film_frame_left_out(side, pectoral):
    """Scanned film: bright unexposed border on the top, bottom and far side, a dark film edge
    cutting the breast at the chest wall, grey film base; with `pectoral` the breast touches
    the top band, so the band is joined to the breast."""
    img, mask = breast(pectoral=pectoral, background=0.12)
    img[:, :12], mask[:, :12] = 0.0, False  # dark film edge at the chest wall
    bands = [(6, 30, 0, W - 6), (H - 30, H - 6, 0, W - 6), (6, H - 6, W - 30, W - 6)]
    for y0, y1, x0, x1 in bands:
        img[y0:y1, x0:x1] = 0.9
    mask[:30] = False  # the band drawn over the muscle's top rows
    img, mask, boxes = scene(side, img, mask, bands)
    assert_breast_kept_and_artifacts_left_out(img, mask, boxes, beyond=24 if pectoral else 0)


@SIDES
@pytest.mark.parametrize(
    "ruler, pectoral",
    [
        ((4, 36, 120, 900), True),  # along the top, joined to the muscle
        ((4, 36, 450, 940), False),  # along the top, apart from the breast
        ((H - 36, H - 4, 60, 900), False),  # along the bottom
        ((100, 1100, W - 34, W - 4), False),  # along the far side
        ((150, 1050, W - 80, W - 50), False),  # near the far side, not touching the edge
    ],
)
def test_ruler_along_an_edge_left_out(side, ruler, pectoral):
    img, mask = breast(pectoral=pectoral)
    add_ruler(img, ruler)
    mask[ruler[0] : ruler[1], ruler[2] : ruler[3]] = False
    img, mask, boxes = scene(side, img, mask, [ruler])
    assert_breast_kept_and_artifacts_left_out(img, mask, boxes, beyond=ruler[1] - ruler[0] if pectoral else 0)


@SIDES
def test_second_bright_regions_left_out(side):
    """The other breast's edge against the far side and a bright sticker: bright regions apart
    from the breast, the first one larger than a label."""
    img, mask = breast()
    yy, xx = np.mgrid[0:H, 0:W]
    other = ((W - xx) / 90.0) ** 2 + ((yy - 500) / 350.0) ** 2 <= 1.0
    img[other] = 0.55
    sticker = (yy - 1100) ** 2 + (xx - 600) ** 2 <= 40**2
    img[sticker] = 1.0
    boxes = [(150, 851, W - 90, W), (1060, 1141, 560, 641)]
    img, mask, boxes = scene(side, img, mask, boxes)
    assert_breast_kept_and_artifacts_left_out(img, mask, boxes)


def scanned_film(base: float | np.ndarray, pad: int = 160):
    """The breast on a scanned film inside a dark border (`pad` columns of zeros each side): the chest wall meets
    the film's edge, not the image's; a label brighter than the fatty breast lies on the film beyond the nipple,
    and one touches the skin line. Returns the image, the breast mask and the two label boxes."""
    img, mask = breast(pectoral=True)
    film = np.where(mask, img, 0.0) + base
    width = W + 2 * pad
    out, out_mask = np.zeros((H, width), np.float32), np.zeros((H, width), bool)
    out[:, pad : pad + W], out_mask[:, pad : pad + W] = film, mask
    labels = [(150, 260, pad + 700, pad + 790), (560, 610, pad + BREAST[3] - 6, pad + BREAST[3] + 90)]
    for box in labels:
        add_label(out, box, "L ML")
        out_mask[box[0] : box[1], box[2] : box[3]] = False
    return np.clip(out, 0, 1), out_mask, labels


@SIDES
@pytest.mark.parametrize("base", ["black", "grey", "uneven"])
def test_scanned_film_inside_a_dark_border(side, base):
    """The failure of the edge-contact rules on real films: the breast never reaches the image edge, labels are
    brighter than fatty tissue (one touches the skin), and the film base may be grey or brighter at one end."""
    levels = {"black": 0.0, "grey": 0.12, "uneven": np.linspace(0.03, 0.15, H, dtype=np.float32)[:, None]}
    img, mask, labels = scanned_film(levels[base])
    if side == "right":
        img, mask = img[:, ::-1].copy(), mask[:, ::-1].copy()
        labels = [(y0, y1, img.shape[1] - x1, img.shape[1] - x0) for y0, y1, x0, x1 in labels]
    cropper = BreastCrop(margin=MARGIN, blank_outside=True)
    found, reason = cropper.find(img[None])
    assert found is not None, reason
    assert found.chest_wall == side
    y0, y1, x0, x1 = found.box
    inside = np.zeros(mask.shape, bool)
    inside[y0:y1, x0:x1] = True
    assert (mask & inside).sum() >= 0.98 * mask.sum()
    ys, xs = np.nonzero(mask)
    assert (y1 - y0) * (x1 - x0) <= 1.15 * (np.ptp(ys) + 1) * (np.ptp(xs) + 1), found.box
    out = cropper.apply(img[None], found)[0]
    label = np.zeros(mask.shape, bool)
    for ly0, ly1, lx0, lx1 in labels:
        label[ly0:ly1, lx0:lx1] = img[ly0:ly1, lx0:lx1] == 1.0
    assert (label & inside).sum() > 500, "the label touching the skin lies in the box"
    assert not (out[(label & inside)[y0:y1, x0:x1]] == 1.0).any(), "a label's bright pixels survive in the crop"


@SIDES
def test_tissue_is_never_blanked_smooth_fat_at_the_chest_wall_and_a_bright_mass(side):
    """Smooth fat as dark and flat as a film base, reaching the chest wall, and a bright round mass in it (the lesion
    the network must see, as compact and bright as a label): neither is background, neither is a marker."""
    img, mask = breast()
    yy, xx = np.mgrid[0:H, 0:W]
    fat = mask & (xx < 260) & (np.abs(yy - 600) < 220)
    img[fat] = 0.22  # flat: no texture at all
    mass = (yy - 600) ** 2 + (xx - 150) ** 2 <= 30**2
    img[mass] = 0.95
    img, mask, _ = scene(side, img, mask, [])
    cropper = BreastCrop(margin=MARGIN, blank_outside=True)
    found, reason = cropper.find(img[None])
    assert found is not None, reason
    y0, y1, x0, x1 = found.box
    out = cropper.apply(img[None], found)[0]
    inside = mask[y0:y1, x0:x1]
    np.testing.assert_array_equal(out[inside], img[y0:y1, x0:x1][inside])


@SIDES
def test_clean_digital_image_is_tight(side):
    img, mask = breast()
    img, mask, _ = scene(side, img, mask, [])
    ys, xs = np.nonzero(mask)
    target = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
    assert_tight(BreastCrop(margin=MARGIN).compute_bounding_box(img[None]), target)


def test_breast_split_by_a_dark_band_is_kept_whole():
    img, _ = breast()
    img[590:610] = 0.0
    assert_tight(BreastCrop(margin=MARGIN).compute_bounding_box(img[None]), BREAST)


def test_chest_wall_hint_overrides_the_pixels():
    img, _ = breast()
    img[100:1150, 520:940] = 0.7  # a bright object larger than the breast, in the far half
    auto = BreastCrop(margin=MARGIN).compute_bounding_box(img[None])
    assert auto[2] >= 520 - MARGIN - TOL  # the pixels alone take the largest object for the breast
    assert_tight(BreastCrop(margin=MARGIN, chest_wall="left").compute_bounding_box(img[None]), BREAST)


@pytest.mark.parametrize(
    "kwargs", [{"chest_wall": "top"}, {"line_width": 0.5}, {"border_band": -0.1}, {"min_relative_area": 2.0}]
)
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        BreastCrop(**kwargs)


# ---------------------------------------------------------------------------------- fallback


@pytest.fixture
def fresh_fallback_warning(monkeypatch):
    """Let the once-per-process fallback warning be logged again."""
    monkeypatch.setattr(breast_crop, "_fallback_logged", False)


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_blank_or_constant_image_falls_back_with_one_warning(value, caplog, fresh_fallback_warning):
    img = np.full((1, H, W), value, np.float32)
    cropper = BreastCrop()
    with caplog.at_level(logging.WARNING, logger=breast_crop.__name__):
        for _ in range(5):
            assert cropper(img) is img
        out = BreastCropd(keys="image")({"image": img})
    assert out["image"] is img
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "whole image is kept" in message and "blank or constant" in message


def test_fallback_warning_names_the_file_and_the_reason(caplog, fresh_fallback_warning):
    # only a thin ruler: there is contrast, but nothing that can be a breast
    img = np.zeros((1, H, W), np.float32)
    add_ruler(img[0], (4, 36, 120, 900))
    meta = MetaTensor(torch.from_numpy(img), meta={"filename_or_obj": "/data/123/456.dcm"})
    with caplog.at_level(logging.WARNING, logger=breast_crop.__name__):
        assert BreastCrop()(meta) is meta
        assert BreastCrop().compute_bounding_box(np.zeros((1, H, W), np.float32)) is None
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "/data/123/456.dcm" in message and "no bright region" in message


def test_dict_passes_the_new_arguments():
    img, _ = breast()
    img = np.ascontiguousarray(img[:, ::-1])[None]
    kwargs = {"chest_wall": "right", "line_width": 0.03, "border_band": 0.01, "min_relative_area": 0.2}
    expected = BreastCrop(**kwargs)(img)
    np.testing.assert_array_equal(BreastCropd(keys="image", **kwargs)({"image": img})["image"], expected)


# ---------------------------------------------------------------------------------- demo data


def test_demo_hard_cases_are_cropped_to_the_breast(tmp_path):
    """Every planted label, frame, ruler and second region of the demo generator stays out of the
    crop, on DICOMs read as the bundle reads them (both photometric interpretations)."""
    summary = write_rsna_demo(tmp_path, n_patients=4, n_test_patients=0, image_shape=(256, 208),
                              hard_case_rate=1.0, seed=5)  # fmt: skip
    train = pd.read_csv(summary["train_csv"])
    hard_cases = summary["hard_cases"]
    margin, tol = 2, 3
    photometric = set()
    for row in train.itertuples():
        case = hard_cases.get(row.image_id)
        if case is None:  # a label with no room near the breast
            continue
        img, meta = read_dicom(summary["train_images_dir"] / str(row.patient_id) / f"{row.image_id}.dcm")
        photometric.add(meta["photometric_interpretation"])
        y0, y1, x0, x1 = BreastCrop(margin=margin).compute_bounding_box(img[None])
        by0, by1, bx0, bx1 = case.breast_box
        assert y0 <= by0 + tol and y1 >= by1 - tol and x0 <= bx0 + tol and x1 >= bx1 - tol, (row, case)
        reach = margin + round(0.03 * max(img.shape))  # a band touching the breast may stay
        assert y0 >= by0 - reach and y1 <= by1 + reach and x0 >= bx0 - reach and x1 <= bx1 + reach, (row, case)
        if case.kind in ("label", "other_breast"):
            for ay0, ay1, ax0, ax1 in case.artifact_boxes:
                assert ay1 <= y0 or ay0 >= y1 or ax1 <= x0 or ax0 >= x1, (row, case)
    assert {case.kind for case in hard_cases.values()} == set(HARD_CASE_KINDS)
    assert photometric == {"MONOCHROME1", "MONOCHROME2"}


def test_blank_outside_clears_a_ruler_that_shares_the_breast_rows():
    image = np.zeros((1, 400, 300), np.float32)
    yy, xx = np.mgrid[:400, :300]
    breast = ((yy - 200) / 190) ** 2 + (xx / 200) ** 2 <= 1.0  # chest wall on the left, reaching top and bottom
    image[0][breast] = 0.6
    image[0, 4:12, 110:200] = 1.0  # a ruler at the top, beside the breast, within the box's rows and columns
    plain = BreastCrop()(image)
    blanked = BreastCrop(blank_outside=True)(image)
    assert plain.shape == blanked.shape and (plain == 1.0).sum() > 0, "the ruler should lie inside the box"
    assert (blanked == 1.0).sum() == 0
    assert np.array_equal(blanked[0][breast[: blanked.shape[1], : blanked.shape[2]]],
                          plain[0][breast[: plain.shape[1], : plain.shape[2]]])
    dict_result = BreastCropd(keys="image", blank_outside=True)({"image": image})["image"]
    assert np.array_equal(dict_result, blanked)


def test_blank_outside_leaves_the_input_untouched_when_the_box_is_the_whole_image():
    image = np.zeros((1, 200, 160), np.float32)
    yy, xx = np.mgrid[:200, :160]
    image[0][((yy - 100) / 100) ** 2 + (xx / 150) ** 2 <= 1.0] = 0.6  # its box and margin fill the image
    image[0, 10:20, 150:158] = 1.0  # a mark in the corner, far from the breast
    meta = MetaTensor(torch.from_numpy(image.copy()), meta={"reduce_level": 0})
    cropper = BreastCrop(blank_outside=True)
    assert cropper.compute_bounding_box(image) == (0, 200, 0, 160)
    for img in (image, meta):
        before = np.array(img, copy=True)
        out = cropper(img)
        assert (np.asarray(out) == 1.0).sum() == 0
        np.testing.assert_array_equal(np.asarray(img), before)
    before = image.copy()
    BreastCropd(keys="image", blank_outside=True)({"image": image})
    np.testing.assert_array_equal(image, before)


# ------------------------------------------------------------------- reduced-resolution decoding
# MammoDicomReader decodes JPEG 2000 at reduce level L (2**L smaller) and says so in the metadata;
# the margin is in source pixels, so the crop must cover the same region as at full resolution.


def half_resolution_scene() -> tuple[np.ndarray, MetaTensor]:
    """An MLO-like breast with a film label beside the muscle, inside the box's rows and columns, at full
    resolution and as a reduce-level-1 decode would give it (half the size, area-averaged)."""
    img, _ = breast(pectoral=True)
    add_label(img, (20, 70, 330, 580))
    half = cv2.resize(img, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    return img[None], MetaTensor(torch.from_numpy(half[None]), meta={"reduce_level": 1})


def test_reduce_level_scales_the_margin_to_the_same_crop_box():
    full, half = half_resolution_scene()
    expected = BreastCrop(margin=MARGIN).compute_bounding_box(full)
    box = BreastCrop(margin=MARGIN).compute_bounding_box(half)
    assert np.abs(2 * np.array(box) - expected).max() <= TOL, (box, expected)  # within a working pixel
    assert BreastCrop(margin=MARGIN).compute_bounding_box(half.numpy(), scale=0.5) == box
    # without the metadata the margin counts half-resolution pixels: twice as wide in source pixels
    unscaled = BreastCrop(margin=MARGIN).compute_bounding_box(half.numpy())
    assert 2 * unscaled[1] >= expected[1] + MARGIN - TOL, (unscaled, expected)


@pytest.mark.parametrize("blank_outside", [False, True])
def test_reduce_level_gives_nearly_the_full_resolution_output(blank_outside):
    full, half = half_resolution_scene()
    cropper = BreastCrop(margin=MARGIN, blank_outside=blank_outside)
    expected = aspect_resize_pad(cropper(full), (256, 192))
    out = cropper(half)
    assert isinstance(out, MetaTensor) and out.meta["reduce_level"] == 1
    got = aspect_resize_pad(out.numpy(), (256, 192))
    assert np.abs(got - expected).mean() < 0.002
    assert (out.numpy() == 1.0).any() != blank_outside  # the label lies in the box; blanking removes it
    dict_out = BreastCropd(keys="image", margin=MARGIN, blank_outside=blank_outside)({"image": half})["image"]
    np.testing.assert_array_equal(dict_out.numpy(), out.numpy())


def test_dict_takes_the_reduce_level_of_the_source_key():
    half = half_resolution_scene()[1]
    plain = half.numpy().copy()  # no metadata: its own margin would be 2 * MARGIN source pixels
    box = BreastCrop(margin=MARGIN).compute_bounding_box(half)
    assert box != BreastCrop(margin=MARGIN).compute_bounding_box(plain)
    out = BreastCropd(keys=["mask", "image"], source_key="image", margin=MARGIN)({"image": half, "mask": plain})
    y0, y1, x0, x1 = box
    np.testing.assert_array_equal(out["mask"], plain[:, y0:y1, x0:x1])
