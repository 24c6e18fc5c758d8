"""The ``medbundle`` command line (python-fire): demo data, downloads, statistics, demo runs, model comparison."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import fire

from medbundle.warning_filters import trust_bundle_configs

__all__ = [
    "compare",
    "demo",
    "demo_data",
    "download",
    "ensemble",
    "explain",
    "export",
    "main",
    "norm_stats",
    "package",
    "preview",
    "register",
    "report",
    "tabular",
    "tabular_predict",
    "tasks",
    "validate",
]


def _writer(task: str):
    """The demo writer of `task` (:class:`medbundle.tasks.DemoFacts`)."""
    from medbundle.tasks import get_task, resolve

    return resolve(get_task(task).demo.writer)


def _bundle_configs(bundle: Path, names: tuple[str, ...], flag: str = "--bundle") -> list[str]:
    configs = [bundle / "configs" / name for name in names]
    for path in configs:
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run from the repository root or pass {flag}")
    return [str(path) for path in configs]


def demo_data(task: str = "rsna", out: str | None = None, seed: int = 0, **options) -> dict:
    """Write the synthetic demo dataset of `task` in the layout real users have.

    Args:
        task: a registered task (``medbundle tasks`` lists them).
        out: output directory; default ``demo_data/<task>``.
        seed: random seed; the same seed writes the same files.
        options: passed to the task's writer (e.g. --n_patients 200 --positive_rate 0.02 for rsna or isic).
    """
    summary = _writer(task)(out or f"demo_data/{task}", seed=seed, **options)
    return {k: str(v) for k, v in summary.items() if not isinstance(v, dict)}


def demo(task: str = "rsna", out: str | None = None, bundle_dir: str | None = None, **overrides) -> None:
    """Write the demo data (if missing) and train the task's bundle briefly on it.

    Runs exactly what ``python -m monai.bundle run training`` runs, with the bundle's
    ``configs/demo.yaml`` overlay (small backbone, small images, few epochs, no downloads).

    Args:
        task: a registered task (``medbundle tasks`` lists them).
        out: demo data directory; default ``demo_data/<task>``.
        bundle_dir: the bundle folder; defaults to ``bundles/<task>`` under the current directory.
        overrides: extra config overrides, e.g. --epochs 3 or --bundle_root /tmp/run (default: the bundle folder).
    """
    from monai.bundle import run

    from medbundle.tasks import get_task

    facts = get_task(task).demo
    out = out or f"demo_data/{task}"
    bundle = Path(bundle_dir or f"bundles/{get_task(task).bundle}")
    configs = _bundle_configs(bundle, ("train.yaml", "demo.yaml"), flag="--bundle_dir")
    if not (Path(out) / facts.marker).exists():
        demo_data(task, out, **facts.options)
    overrides.setdefault("bundle_root", str(bundle))
    run(
        run_id="training",
        config_file=configs,
        logging_file=str(bundle / "configs" / "logging.conf"),
        dataset_dir=out,
        **overrides,
    )


def download(task: str = "chest_xray", out: str | None = None, force: bool = False) -> str:
    """Download a task's Kaggle dataset with kagglehub and arrange it in the layout the bundle reads.

    Args:
        task: which dataset ("chest_xray", or "isic": the isic-2024-challenge competition files, after
            accepting its rules on Kaggle).
        out: output directory; default ``data/<task>``.
        force: download and arrange again even when `out` already holds the data.
    """
    from medbundle.data.download import DownloadError, download_dataset

    try:
        return str(download_dataset(task, out or f"data/{task}", force=force))
    except DownloadError as error:  # a message that says what to do, not a traceback
        print(f"medbundle download: {error}", file=sys.stderr)
        sys.exit(1)


def norm_stats(
    data: str,
    image_size: int | list[int],
    bundle: str = "bundles/chest_xray",
    out: str | None = None,
    num_workers: int = 2,
    **overrides,
) -> dict:
    """Measure the training images' mean/std after the bundle's own decoding and resizing, for normalisation.

    The statistics depend on the resize and on CLAHE, so they are written per setting to
    ``<data>/norm_stats_<H>x<W>[_clahe].json``, the file the bundle reads for that ``image_size`` and ``clahe``.

    Args:
        data: the dataset directory (the bundle's ``dataset_dir``).
        image_size: model input size, one int for square or ``[H,W]``.
        bundle: the bundle whose ``cached_transforms`` and training split are used.
        out: output file instead of the default.
        num_workers: decoding processes.
        overrides: further bundle overrides, e.g. --clahe True or --patients_csv FILE --fold 1.
    """
    from monai.bundle import ConfigParser
    from monai.transforms import Compose

    from medbundle.data.norm_stats import (
        compute_norm_stats,
        norm_stats_path,
        write_norm_stats,
    )

    size = [image_size, image_size] if isinstance(image_size, int) else list(image_size)
    parser = ConfigParser()
    parser.read_config(_bundle_configs(Path(bundle), ("train.yaml",)))
    parser.update({"dataset_dir": data, "image_size": size, **overrides})
    stats = compute_norm_stats(
        parser.get_parsed_content("train#datalist"),
        Compose(parser.get_parsed_content("cached_transforms")),
        num_workers=num_workers,
    )
    path = Path(out) if out else norm_stats_path(data, size, clahe=bool(parser.get_parsed_content("clahe")))
    write_norm_stats(stats, path)
    logging.getLogger(__name__).info("normalisation statistics written to %s", path)
    return stats


def compare(
    bundle: str = "bundles/chest_xray", runs: str | None = None, out: str | None = None, sort: str | None = None, **overrides
) -> str:
    """Evaluate every trained checkpoint below a bundle and print one table, best first.

    Writes ``compare.md`` and ``compare.csv`` to `out` (default ``<bundle>/outputs/compare``).

    Args:
        bundle: the bundle folder whose evaluate.yaml is used.
        runs: folder searched for ``models/fold<k>/model.pt`` (default: the bundle folder).
        out: output folder.
        sort: metric to rank by (default accuracy, or auroc for a binary bundle).
        overrides: bundle overrides for the evaluations, e.g. --dataset_dir DIR --eval_split test.
    """
    from medbundle.compare import compare_checkpoints, markdown_table

    return markdown_table(compare_checkpoints(bundle, runs=runs, out=out, sort=sort, **overrides))


def preview(
    bundle: str, dataset_dir: str, n: int = 16, out: str = "preview.png", seed: int = 0, columns: int = 4,
    before: bool = False, **overrides,
) -> str:
    """Write a montage of training images exactly as the bundle's network receives them (crop, flip, resize, CLAHE).

    rsna: a tile whose crop kept the whole image, or whose box is far from the others' size, is framed in red with
    the reason.

    Args:
        bundle: the bundle folder, e.g. bundles/rsna.
        dataset_dir: the bundle's ``dataset_dir``.
        n: number of images (a reproducible random sample of the training split).
        out: the PNG to write.
        seed: the sample's seed.
        columns: tiles per row.
        before: each image as decoded, with the crop's box, beside the network's input.
        overrides: bundle settings, e.g. --image_size "[512,256]".
    """
    from medbundle.visualize import preview_bundle

    return str(preview_bundle(bundle, dataset_dir, n=n, out=out, seed=seed, columns=columns, before=before, **overrides))


def validate(
    task: str = "rsna",
    dataset_dir: str | None = None,
    out: str | None = None,
    n_folds: int = 5,
    seed: int = 42,
    num_workers: int = 2,
    **options,
) -> None:
    """Read every image of a data set once and report what training would meet; exit 1 on leakage or bad files.

    Writes ``data_check.md``, ``data_check.json`` and ``data_check_images.csv`` (default
    ``<dataset_dir>/data_check/``): counts per class, site, view and laterality (rsna) or anatomical site, sex
    and tile type (isic), images per breast or patient, unreadable files with reasons, transfer syntaxes, bit
    depths, channels, image sizes, classes per fold,
    and exact and near-duplicate images across patients and folds (near-duplicates across folds leak).

    Args:
        task: a registered task (``medbundle tasks`` lists them).
        dataset_dir: the bundle's ``dataset_dir``.
        out: report folder.
        n_folds: the bundle's ``n_folds``.
        seed: the bundle's fold seed.
        num_workers: decoding processes.
        options: task settings of the same name as the bundle's, e.g. --patients_csv for chest_xray, --csv and
            --images for isic.
    """
    from medbundle.datacheck import check_dataset

    if dataset_dir is None:
        raise ValueError("pass --dataset_dir DIR, the folder the bundle's dataset_dir points to.")
    report = check_dataset(task, dataset_dir, out=out, n_folds=n_folds, seed=seed, num_workers=num_workers, **options)
    print(report["summary"])
    if not report["ok"]:
        sys.exit(1)


def ensemble(
    task: str,
    *more_images: str,
    checkpoints: str | None = None,
    members=None,
    images=None,
    image_dir: str | None = None,
    strategy: str = "soft",
    output_csv: str = "ensemble.csv",
    image_size=None,
    batch_size: int = 32,
    num_workers: int = 0,
    weights=None,
    tta: bool = False,
) -> str:
    """Predict image files with an ensemble of checkpoints: one CSV row per image, every member and the ensemble.

    ``medbundle ensemble --task isic --checkpoints runs/isic --images a.jpg b.jpg --strategy hard_weighted
    --output_csv out.csv`` (or ``--image_dir DIR``). See :func:`medbundle.ensemble.ensemble` for the arguments;
    `more_images` takes the file names after the first one of ``--images``.
    """
    from medbundle.ensemble import ensemble as predict_ensemble

    if more_images:
        images = [*([] if images is None else [images] if isinstance(images, str) else images), *more_images]
    return predict_ensemble(task, checkpoints=checkpoints, members=members, images=images, image_dir=image_dir,
                            strategy=strategy, output_csv=output_csv, image_size=image_size, batch_size=batch_size,
                            num_workers=num_workers, weights=weights, tta=tta)


def export(bundle: str, checkpoint: str, format: str = "both", out: str = "export", parity_images=None,
           tabular: str | None = None) -> dict:  # fmt: skip
    """Export a trained bundle to TorchScript and/or ONNX with deploy.json, after a parity check.

    ``medbundle export --bundle bundles/rsna --checkpoint bundles/rsna/models/fold0/model.pt --format ts|onnx|both
    --out DIR`` (see :func:`medbundle.export.export_bundle`); isic: ``--tabular runs/isic_tabular`` adds the second
    stage (:class:`medbundle.tabular.StackedPredictor`).
    """
    from medbundle.export.command import export as export_command

    if tabular is not None and format == "ts":
        raise ValueError("--tabular needs the ONNX export that the torch-free predictor runs: use --format onnx or both.")
    result = export_command(bundle, checkpoint, format=format, out=out, parity_images=parity_images)
    if tabular is not None:
        from medbundle.tabular import add_tabular_stage

        result["files"] = {**result["files"], "tabular": str(add_tabular_stage(out, tabular))}
    return result


def explain(
    bundle: str,
    checkpoint: str,
    images=None,
    *more_images: str,
    out: str = "explain",
    target_layer: str | None = None,
    class_index: int | None = None,
    batch_size: int = 8,
) -> list[dict]:
    """Grad-CAM maps of a trained bundle over the images its network saw: a PNG per image and explain.csv.

    ``medbundle explain --bundle bundles/chest_xray --checkpoint bundles/chest_xray/models/fold0/model.pt --images
    a.png b.png --out DIR [--target_layer backbone.layer3] [--class_index 2]`` (images may be one folder). See
    :func:`medbundle.explain.explain`; `more_images` takes the file names after the first one of ``--images``.
    """
    from medbundle.explain import explain as explain_images

    if images is None:
        raise ValueError("pass --images: image files of the bundle's task, or a folder of them.")
    images = [*([images] if isinstance(images, str) else images), *more_images]
    return explain_images(bundle, checkpoint, images, out=out, class_index=class_index, target_layer=target_layer,
                          batch_size=batch_size)  # fmt: skip


def package(
    bundle: str, checkpoint: str | None = None, out: str | None = None, name: str | None = None, parity_images=None
) -> str:
    """Package a trained bundle as a self-contained MONAI bundle (folder + .zip) and a Triton model repository.

    ``medbundle package --bundle bundles/rsna`` (checkpoint: <bundle>/models/fold0/model.pt, out: dist).
    """
    from medbundle.export.command import package as package_command

    return package_command(bundle, checkpoint=checkpoint, out=out, name=name, parity_images=parity_images)


def report(run: str, k: int | None = None, n_resamples: int | None = None, target_layer: str | None = None,
           attributes_csv: str | None = None) -> str:
    """Rebuild an evaluation's report page from its files; prints the page's path.

    ``medbundle report --run bundles/rsna/outputs/fold0`` reads ``<run>/report/inputs.json`` (written by the
    evaluation) and writes ``<run>/report/index.html`` and ``report.json`` again, optionally with other settings
    (``--k``, ``--n_resamples``, ``--target_layer``, ``--attributes_csv``); it never stores a calibration.
    """
    from medbundle.report import rebuild_report

    changes = {"k": k, "n_resamples": n_resamples, "target_layer": target_layer, "attributes_csv": attributes_csv}
    return str(rebuild_report(run, **{key: value for key, value in changes.items() if value is not None}))


def tabular(
    dataset_dir: str,
    oof: str,
    out: str = "runs/isic_tabular",
    csv: str = "train-metadata.csv",
    boosters=None,
    seeds=None,
    neg_per_pos: float | None = 100.0,
    image_weight: float = 0.25,
    models=None,
    threads: int | None = None,
) -> str:
    """isic's second stage: gradient-boosted trees on the lesion metadata and the image model's out-of-fold score.

    ``medbundle tabular --dataset_dir D --oof runs/isic5 --out runs/isic_tabular`` trains LightGBM, XGBoost and
    CatBoost (``--boosters lightgbm,xgboost``: a subset) on the image sweep's folds and writes the models,
    ``report.md`` / ``report.json`` (out-of-fold pAUC and AUROC of image, tabular, tabular+image and blend) and
    ``oof.csv``; prints the report's path. ``--seeds 0,1,2`` bags, ``--neg_per_pos`` samples the negatives,
    ``--models`` picks the sweep's models whose scores are averaged. See :func:`medbundle.tabular.train_tabular`.
    """
    from medbundle.tabular import train_tabular
    from medbundle.tabular.command import tabular_options

    train_tabular(dataset_dir, oof, out, csv=csv, neg_per_pos=neg_per_pos, image_weight=image_weight, threads=threads,
                  **tabular_options(boosters, models, seeds))  # fmt: skip
    return str(Path(out) / "report.md")


def tabular_predict(model: str, dataset_dir: str, image_scores: str, csv: str = "test-metadata.csv",
                    out: str | None = None) -> str:  # fmt: skip
    """Write isic's ``submission.csv`` from the second stage: ``medbundle tabular_predict --model runs/isic_tabular
    --dataset_dir D --image_scores bundles/ensemble/outputs/isic/inference/submission.csv`` (the test images'
    scores); rows in the test CSV's order. Prints the submission's path."""
    from medbundle.tabular.command import predict_submission

    return str(predict_submission(model, dataset_dir, image_scores, csv=csv, out=out))


def register(
    bundle: str,
    checkpoint: str,
    name: str,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    out: str | None = None,
    parity_images=None,
) -> str:
    """Export a trained bundle to ONNX and register it in the MLflow model registry; prints the model's URI.

    ``medbundle register --bundle bundles/rsna --checkpoint bundles/rsna/models/fold0/model.pt --name rsna``
    adds a version to ``rsna`` whose ``mlflow.pyfunc.load_model("models:/rsna/<version>").predict(paths)`` runs the
    torch-free :mod:`medbundle.deploy` predictor. The store is ``--tracking_uri``, else ``MLFLOW_TRACKING_URI``,
    else ``<bundle>/eval/mlruns.db`` (see :func:`medbundle.tracking.registry.register`).
    """
    from medbundle.tracking.registry import register as register_model

    registered = register_model(
        bundle, checkpoint, name, tracking_uri=tracking_uri, experiment=experiment, out=out, parity_images=parity_images
    )
    return registered["model_uri"]


def tasks() -> str:
    """List the registered tasks (:mod:`medbundle.tasks`): name, bundle folder, what it is, and where it came from.

    Built-in tasks come first, then installed plug-ins (entry point group ``medbundle.tasks``) and ``TASK`` files in
    the folders of ``MEDBUNDLE_TASK_PATH``; ``docs/ADDING_A_TASK.md`` says how to add one.
    """
    from medbundle.tasks import registry

    rows = [("task", "bundle", "from", "what it is")]
    rows += [(name, f"bundles/{spec.bundle}", registry.source(name), spec.title) for name, spec in registry.tasks().items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[3]]) for row in rows)


def _fire_command(args: list[str]) -> list[str]:
    """`args` with a help request (``-h``/``--help`` before any ``--``) turned into fire's ``COMMAND -- --help``.

    fire shows help for ``--help`` only where the command cannot take it as an argument: a command with
    ``**options`` receives ``help=True`` instead (``demo_data --help`` crashed, ``demo --help`` trained a model).
    Its separator form shows the help of any command without calling it.
    """
    head = args[: args.index("--")] if "--" in args else args
    if not any(arg in ("-h", "--help") for arg in head):
        return args
    return [*[arg for arg in head[:1] if not arg.startswith("-")], "--", "--help"]


def main() -> None:
    """Entry point of the ``medbundle`` console script and of ``python -m medbundle``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    trust_bundle_configs()
    fire.Fire(
        {
            "demo_data": demo_data,
            "demo": demo,
            "download": download,
            "norm_stats": norm_stats,
            "compare": compare,
            "validate": validate,
            "preview": preview,
            "ensemble": ensemble,
            "explain": explain,
            "export": export,
            "package": package,
            "register": register,
            "report": report,
            "tabular": tabular,
            "tabular_predict": tabular_predict,
            "tasks": tasks,
        },
        command=_fire_command(sys.argv[1:]),
        name="medbundle",
    )


if __name__ == "__main__":
    main()
