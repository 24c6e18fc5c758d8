"""``medbundle validate``: know a data set before training on it.

:func:`check_dataset` lists the data exactly as the task's bundle does, assigns the bundle's
folds, decodes every image once (in parallel) and reports what breaks or biases training:
unreadable files, class balance per fold, the mix of sites, views, storage formats, channels and
sizes, and identical or near-identical images in different folds (or split folders), which leak
validation data into training; for mammograms, how often the breast crop finds no breast and which boxes
stand out. The report is written as ``data_check.md`` (for people),
``data_check.json`` (the returned dict) and ``data_check_images.csv`` (one row of facts per image).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pydicom.uid import UID

from medbundle.data.folds import grouped_folds
from medbundle.datacheck.adapters import CROP_FACTS, DatasetFacts
from medbundle.datacheck.image_hash import (
    NEAR_DUPLICATE_DISTANCE,
    near_duplicate_pairs,
)
from medbundle.datacheck.image_scan import scan_images
from medbundle.imaging.crop_summary import summarize_crops
from medbundle.tasks import resolve, tasks

__all__ = ["check_dataset", "render_markdown", "write_report"]

logger = logging.getLogger(__name__)

LARGE_IMAGE_FACTOR = 4  # images with more than this many times the median pixel count are "far larger"
CROP_FALLBACK_WARN = 0.05  # the rsna bundle's crop_fallback_warn: a larger share of images kept whole is a warning
_MAX_LISTED = 1000  # pairs / files listed in the JSON per kind; all are counted
_MAX_SHOWN = 30  # rows shown in the markdown per table


def check_dataset(
    task: str,
    dataset_dir: str | Path,
    out: str | Path | None = None,
    n_folds: int = 5,
    seed: int = 42,
    num_workers: int = 2,
    progress: bool = True,
    near_duplicate_distance: int = NEAR_DUPLICATE_DISTANCE,
    **task_options,
) -> dict:
    """Check a data set the way its bundle will use it, and write the report.

    The folds are assigned first, by the bundle's own function and settings, so a data set that
    cannot be split fails at once; then every image is decoded once, in ``num_workers`` processes.

    Args:
        task: a registered task (:mod:`medbundle.tasks`); its spec's ``dataset_facts`` adapter lists the data.
        dataset_dir: the data set folder, as the bundle's ``dataset_dir``.
        out: folder for ``data_check.md``, ``data_check.json`` and ``data_check_images.csv``;
            default ``<dataset_dir>/data_check``.
        n_folds: the bundle's ``n_folds``.
        seed: the bundle's fold ``seed``.
        num_workers: decoding processes.
        progress: show a progress bar.
        near_duplicate_distance: largest perceptual-hash distance (bits of 256) of near-duplicates.
        task_options: passed to the task's adapter, e.g. ``patients_csv`` for chest_xray,
            ``csv``/``image_dir`` for rsna or ``csv``/``images`` for isic (the bundle settings of the same name).

    Returns:
        The report (also written as ``data_check.json``): ``ok`` (False on unreadable files or leakage:
        duplicates across folds/splits, a patient in two of them), ``summary`` (one paragraph),
        ``problems`` and ``warnings`` (sentences) and the sections described in the markdown.

    Raises:
        ValueError: unknown task; or the adapter or :func:`~medbundle.data.grouped_folds` rejects the data.
        FileNotFoundError: the data set folder or its CSV does not exist.
    """
    known = tasks()
    if task not in known:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(known)}.")
    dataset_dir = Path(dataset_dir)
    data = resolve(known[task].dataset_facts)(dataset_dir, **task_options)
    partitions, order = _partitions(data, n_folds, seed)
    facts = scan_images(
        [item["image"] for item in data.items], reader=data.reader, num_workers=num_workers, progress=progress,
        image_facts=data.image_facts,
    )
    settings = {
        "n_folds": n_folds,
        "seed": seed,
        "near_duplicate_distance": near_duplicate_distance,
        **{key: str(value) for key, value in task_options.items()},
    }
    report = _build_report(task, dataset_dir, data, partitions, order, facts, settings)
    write_report(
        report, _image_table(data, partitions, facts), Path(out) if out is not None else dataset_dir / "data_check"
    )
    return report


def write_report(report: dict, images: pd.DataFrame, out: str | Path) -> dict[str, Path]:
    """Write ``data_check.json``, ``data_check.md`` and ``data_check_images.csv`` into ``out``.

    Args:
        report: the dict :func:`check_dataset` returns.
        images: one row of facts per image.
        out: the output folder (created if needed).

    Returns:
        The written paths by kind ("json", "markdown", "images").
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "data_check.json",
        "markdown": out / "data_check.md",
        "images": out / "data_check_images.csv",
    }
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["markdown"].write_text(render_markdown(report))
    images.to_csv(paths["images"], index=False)
    logger.info("data check report written to %s", paths["markdown"])
    return paths


# --------------------------------------------------------------------------- analysis


def _partitions(data: DatasetFacts, n_folds: int, seed: int) -> tuple[list[str], list[str]]:
    """Each item's fold ("fold 2") or, outside the pooled splits, its split; and their display order.

    Folds keep a patient whole; items without a ``patient_id`` are their own group (by ``image_id``), as a bundle
    without patient ids splits images.
    """
    labels = [item["split"] for item in data.items]
    pooled = [index for index, item in enumerate(data.items) if item["split"] in data.fold_splits]
    if pooled:
        folds = grouped_folds(
            [data.items[i].get("patient_id", data.items[i]["image_id"]) for i in pooled],
            [data.items[i]["label"] for i in pooled],
            n_splits=n_folds,
            seed=seed,
        )
        for index, fold in zip(pooled, folds):
            labels[index] = f"fold {fold}"
    order = [f"fold {fold}" for fold in range(n_folds) if pooled] + list(
        dict.fromkeys(label for label in labels if not label.startswith("fold "))
    )
    return labels, order


def _build_report(
    task: str,
    dataset_dir: Path,
    data: DatasetFacts,
    partitions: list[str],
    order: list[str],
    facts: list[dict],
    settings: dict,
) -> dict:
    """Assemble every section of the report, then the problems, warnings, ``ok`` and summary."""
    items = data.items
    readable = [index for index, fact in enumerate(facts) if fact["readable"]]
    kinds = {name.startswith("fold ") for name in order}
    word = "fold/split" if len(kinds) == 2 else "fold" if True in kinds else "split"
    patients = {item["patient_id"] for item in items if "patient_id" in item}
    report = {
        "task": task,
        "dataset_dir": str(dataset_dir),
        "ok": True,
        "summary": "",
        "problems": [],
        "warnings": [],
        "settings": settings,
        "n_images": len(items) + len(data.missing),
        "n_readable": len(readable),
        "n_patients": len(patients) if patients else None,
        "classes": {
            "column": data.class_column,
            "by_split": {split: _classes(data, members) for split, members in _by(items, "split").items()},
        },
        "columns": {column: _count(item.get(column) for item in items) for column in data.count_columns},
        "images_per_group": {column: _images_per_group(items, column) for column in data.group_columns},
        "partitions": _partition_section(data, partitions, order, word),
        "unreadable": _unreadable(dataset_dir, data, partitions, facts),
        "formats": _count(facts[i]["format"] for i in readable),
        "channels": _count(facts[i]["channels"] for i in readable if facts[i]["channels"] is not None),
        "transfer_syntaxes": _transfer_syntaxes(facts[i]["transfer_syntax"] for i in readable),
        "bit_depths": _count(facts[i]["bits_stored"] for i in readable if facts[i]["bits_stored"] is not None),
        "photometric_interpretations": _count(
            facts[i]["photometric_interpretation"] for i in readable if facts[i]["format"] == "dicom"
        ),
        "image_size": _image_size(dataset_dir, items, partitions, facts, readable),
        "duplicates": _duplicates(dataset_dir, items, partitions, facts, readable, settings["near_duplicate_distance"]),
        "patients_in_several_partitions": _patients_in_several(items, partitions),
    }
    if any("crop_found" in facts[i] for i in readable):
        report["breast_crop"] = _breast_crop(items, facts, readable)
    report["problems"], report["warnings"] = _findings(report, data, word)
    report["ok"] = not report["problems"]
    report["summary"] = _summary(report, data, word)
    return report


def _plural(word: str) -> str:
    """Plural of a partition word: fold -> folds, fold/split -> folds/splits."""
    return "/".join(f"{part}s" for part in word.split("/"))


def _count(values: Iterable[object]) -> dict[str, int]:
    """Counts by value (as text; absent values as "(none)"), sorted by value."""
    counts = Counter("(none)" if pd.isna(value) else str(value) for value in values)
    return dict(sorted(counts.items(), key=lambda kv: (0, int(kv[0]), "") if kv[0].isdigit() else (1, 0, kv[0])))


def _stats(values: Sequence[float]) -> dict:
    """min / median / max of numbers (None for none)."""
    if not values:
        return {"min": None, "median": None, "max": None}
    median = float(np.median(values))
    return {"min": min(values), "median": int(median) if median.is_integer() else median, "max": max(values)}


def _by(items: Iterable[dict], key: str) -> dict[str, list[dict]]:
    """Items grouped by the value of ``key``, in order of first appearance."""
    groups: dict[str, list[dict]] = {}
    for item in items:
        groups.setdefault(item[key], []).append(item)
    return groups


def _classes(data: DatasetFacts, items: Iterable[dict]) -> dict[str, int]:
    """Images per class, every class (zeros included) in label order."""
    counts = Counter(item["class"] for item in items)
    return {name: counts[name] for name in data.class_names}


def _images_per_group(items: Sequence[dict], column: str) -> dict:
    """How many groups (patients, breasts) there are and min / median / max images per group."""
    sizes = Counter(item[column] for item in items if column in item)
    return {"groups": len(sizes), **_stats(list(sizes.values()))}


def _partition_section(data: DatasetFacts, partitions: list[str], order: list[str], word: str) -> dict:
    """Images, patients and class counts per fold or split."""
    by_partition = {}
    for name in order:
        members = [item for item, partition in zip(data.items, partitions) if partition == name]
        patients = {item["patient_id"] for item in members if "patient_id" in item}
        by_partition[name] = {
            "images": len(members),
            "patients": len(patients) if patients else None,
            "classes": _classes(data, members),
        }
    return {"word": word, "fold_splits": list(data.fold_splits), "by_partition": by_partition}


def _where(dataset_dir: Path, item: dict, partition: str) -> dict:
    """How a report names one image: path relative to the data set, ids, fold or split."""
    return {
        "image": os.path.relpath(item["image"], dataset_dir),
        "image_id": item["image_id"],
        "patient_id": item.get("patient_id"),
        "partition": partition,
    }


def _unreadable(dataset_dir: Path, data: DatasetFacts, partitions: list[str], facts: list[dict]) -> dict:
    """Files that do not exist or cannot be decoded, with the reason."""
    files = [
        {**_where(dataset_dir, item, partition), "error": fact["error"]}
        for item, partition, fact in zip(data.items, partitions, facts)
        if not fact["readable"]
    ]
    files += [{"image": None, "partition": None, **row} for row in data.missing]
    return {"count": len(files), "files": files[:_MAX_LISTED]}


def _transfer_syntaxes(uids: Iterable[str | None]) -> dict[str, dict]:
    """DICOM transfer syntaxes (UID, its name, images); PNG/JPEG files have none and are left out."""
    counts = Counter(uid for uid in uids if uid is not None)
    return {uid: {"name": UID(uid).name, "images": n} for uid, n in sorted(counts.items())}


def _image_size(
    dataset_dir: Path, items: Sequence[dict], partitions: list[str], facts: list[dict], readable: list[int]
) -> dict:
    """Distribution of rows and columns, and the images with far more pixels than the median."""
    rows = [facts[i]["rows"] for i in readable]
    columns = [facts[i]["columns"] for i in readable]
    pixels = np.asarray(rows, dtype=float) * np.asarray(columns, dtype=float)
    limit = LARGE_IMAGE_FACTOR * float(np.median(pixels)) if readable else 0.0
    large = [
        {**_where(dataset_dir, items[i], partitions[i]), "rows": facts[i]["rows"], "columns": facts[i]["columns"]}
        for i, n in zip(readable, pixels)
        if n > limit
    ]
    return {
        "rows": _stats(rows),
        "columns": _stats(columns),
        "large_factor": LARGE_IMAGE_FACTOR,
        "n_large": len(large),
        "large": large[:_MAX_LISTED],
    }


def _breast_crop(items: Sequence[dict], facts: list[dict], readable: list[int]) -> dict:
    """What the breast crop finds on the readable images: the share kept whole and why, the box sizes, outliers."""
    records = [{key: facts[i][f"crop_{key}"] for key in CROP_FACTS} for i in readable]
    summary = summarize_crops(records, [str(items[i]["image_id"]) for i in readable])
    listed = lambda keep: [
        {"image": str(items[i]["image"]), "image_id": str(items[i]["image_id"]), "box_area": round(r["box_area"], 4),
         "reason": note}
        for i, r, outlier, note in zip(readable, records, summary.outliers, summary.notes) if keep(r, outlier)
    ][:_MAX_LISTED]  # fmt: skip
    return {
        "images": summary.total,
        "found": summary.found,
        "fallback_share": round(summary.fallback_share, 4),
        "reasons": dict(summary.reasons.most_common()),
        "box_area": summary.box_quantiles("box_area"),
        "box_height": summary.box_quantiles("box_height"),
        "box_width": summary.box_quantiles("box_width"),
        "fallbacks": listed(lambda r, outlier: not r["found"]),
        "outliers": listed(lambda r, outlier: outlier),
    }


def _duplicates(
    dataset_dir: Path,
    items: Sequence[dict],
    partitions: list[str],
    facts: list[dict],
    readable: list[int],
    max_distance: int,
) -> dict:
    """Exact (same decoded pixels) and near (perceptual hash within ``max_distance``) duplicate pairs.

    A pair in two folds or splits is leakage; a pair of two patients within one fold hints at wrong
    patient ids. Near pairs leave out exact ones.
    """
    by_digest = defaultdict(list)
    for index in readable:
        by_digest[facts[index]["md5"]].append(index)
    exact = [(i, j, 0) for group in by_digest.values() for i, j in itertools.combinations(group, 2)]
    hashes = [bytes.fromhex(facts[index]["phash"]) for index in readable]
    near = [
        (readable[a], readable[b], distance)
        for a, b, distance in near_duplicate_pairs(hashes, max_distance)
        if facts[readable[a]]["md5"] != facts[readable[b]]["md5"]
    ]
    return {
        "exact": _pair_section(dataset_dir, items, partitions, exact, with_distance=False),
        "near": _pair_section(dataset_dir, items, partitions, near, with_distance=True),
    }


def _pair_section(
    dataset_dir: Path,
    items: Sequence[dict],
    partitions: list[str],
    pairs: list[tuple[int, int, int]],
    with_distance: bool,
) -> dict:
    """Count and list duplicate pairs, leakage first, then pairs of two patients."""
    entries = []
    for i, j, distance in pairs:
        a, b = items[i].get("patient_id"), items[j].get("patient_id")
        entries.append(
            {
                **({"distance": distance} if with_distance else {}),
                "leakage": partitions[i] != partitions[j],
                "same_patient": None if a is None or b is None else a == b,
                "a": _where(dataset_dir, items[i], partitions[i]),
                "b": _where(dataset_dir, items[j], partitions[j]),
            }
        )
    entries.sort(key=lambda e: (not e["leakage"], e["same_patient"] is not False))
    return {
        "pairs": len(entries),
        "leakage": sum(e["leakage"] for e in entries),
        "across_patients_same_partition": sum(not e["leakage"] and e["same_patient"] is False for e in entries),
        "listed": entries[:_MAX_LISTED],
    }


def _patients_in_several(items: Sequence[dict], partitions: list[str]) -> list[dict]:
    """Patients whose images lie in more than one fold or split."""
    where: dict[str, Counter] = defaultdict(Counter)
    for item, partition in zip(items, partitions):
        if "patient_id" in item:
            where[item["patient_id"]][partition] += 1
    return [
        {"patient_id": patient, "partitions": dict(sorted(counts.items()))}
        for patient, counts in where.items()
        if len(counts) > 1
    ]


def _findings(report: dict, data: DatasetFacts, word: str) -> tuple[list[str], list[str]]:
    """Problems (each makes ``ok`` False: training on this data is wrong) and warnings (worth a look)."""
    problems, warnings = [], []
    n_unreadable = report["unreadable"]["count"]
    if n_unreadable:
        problems.append(f"{n_unreadable} of {report['n_images']} images cannot be read")
    for kind, section in report["duplicates"].items():
        if section["leakage"]:
            problems.append(
                f"{section['leakage']} pair(s) of {kind}-duplicate images lie in different {_plural(word)} (leakage)"
            )
        within = section["across_patients_same_partition"]
        if within:
            warnings.append(
                f"{within} pair(s) of {kind}-duplicate images of different patients share a {word}: check the patient ids"
            )
    several = report["patients_in_several_partitions"]
    if several:
        problems.append(f"{len(several)} patient(s) have images in more than one {word} (leakage)")
    for name, counts in report["partitions"]["by_partition"].items():
        absent = [class_name for class_name, n in counts["classes"].items() if n == 0]
        if absent and counts["images"]:
            consequence = (
                "the bundle's split_fold refuses this fold; use fewer folds"
                if name.startswith("fold ")
                else "its metrics for them are undefined"
            )
            warnings.append(f"{name} has no image of {data.class_column} {absent}: {consequence}")
    size = report["image_size"]
    if size["n_large"]:
        warnings.append(f"{size['n_large']} image(s) have more than {size['large_factor']}x the median pixel count")
    crop = report.get("breast_crop")
    if crop and crop["images"] > crop["found"]:
        kept = crop["images"] - crop["found"]
        loud = " (above crop_fallback_warn: training will warn)" if crop["fallback_share"] > CROP_FALLBACK_WARN else ""
        warnings.append(
            f"the breast crop finds no breast in {kept} of {crop['images']} images ({crop['fallback_share']:.1%}){loud}; "
            "they train on the whole image (listed under Breast crop)"
        )
    if crop and crop["outliers"]:
        warnings.append(f"{len(crop['outliers'])} crop box(es) far from the median size (listed under Breast crop)")
    return problems, warnings


def _summary(report: dict, data: DatasetFacts, word: str) -> str:
    """One paragraph: what the data holds, how it splits, and the verdict."""
    totals = Counter()
    for counts in report["classes"]["by_split"].values():
        totals.update(counts)
    classes = ", ".join(f"{name}: {totals[name]}" for name in data.class_names)
    patients = f" of {report['n_patients']} patients" if report["n_patients"] else ""
    size = report["image_size"]
    sentences = [
        (
            f"{report['task']} data in {report['dataset_dir']}: {report['n_images']} images{patients} "
            f"({data.class_column} {classes}); {report['n_readable']} readable, median size "
            f"{size['rows']['median']}x{size['columns']['median']}."
        )
    ]
    by_partition = report["partitions"]["by_partition"]
    if data.fold_splits:
        folds = [counts["classes"] for name, counts in by_partition.items() if name.startswith("fold ")]
        rarest = min(data.class_names, key=lambda name: totals[name])
        per_fold = [counts[rarest] for counts in folds]
        sentences.append(
            f"{len(folds)} patient-grouped folds (seed {report['settings']['seed']}) over "
            f"{'+'.join(data.fold_splits)} hold {min(per_fold)}-{max(per_fold)} images of {data.class_column} {rarest} each."
        )
    else:
        sizes = ", ".join(f"{name} {counts['images']}" for name, counts in by_partition.items())
        sentences.append(f"Fixed split folders: {sizes} images.")
    crop = report.get("breast_crop")
    if crop:
        sentences.append(
            f"The breast crop finds the breast in {crop['found']} of {crop['images']} images (median box "
            f"{crop['box_area'].get('p50', float('nan')):.0%} of the image)."
        )
    if report["problems"]:
        sentences.append(f"NOT OK: {'; '.join(report['problems'])}.")
    else:
        patients_checked = f"no patient in two {_plural(word)}" if report["n_patients"] else "patients unknown"
        sentences.append(f"OK: every image readable, no duplicate image in two {_plural(word)}, {patients_checked}.")
    if report["warnings"]:
        sentences.append(f"{len(report['warnings'])} warning(s): {'; '.join(report['warnings'])}.")
    return " ".join(sentences)


def _image_table(data: DatasetFacts, partitions: list[str], facts: list[dict]) -> pd.DataFrame:
    """One row per image: ids, split, fold/split, class and the scanned facts."""
    rows = [
        {
            "image": item["image"],
            "image_id": item["image_id"],
            "patient_id": item.get("patient_id"),
            "split": item["split"],
            "partition": partition,
            data.class_column: item["class"],
            **fact,
        }
        for item, partition, fact in zip(data.items, partitions, facts)
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- markdown


def render_markdown(report: dict) -> str:
    """The report as a markdown page: the summary, then one table per section."""
    word = report["partitions"]["word"]
    verdict = "OK" if report["ok"] else "NOT OK"
    lines = [f"# Data check: {report['task']}: {verdict}", "", report["summary"], ""]
    settings = ", ".join(f"{key} = {value}" for key, value in report["settings"].items())
    lines += [f"Data set: `{report['dataset_dir']}`; settings: {settings}.", ""]
    if report["problems"] or report["warnings"]:
        lines += ["## Findings", ""]
        lines += [f"- **problem:** {text}" for text in report["problems"]]
        lines += [f"- warning: {text}" for text in report["warnings"]]
        lines.append("")

    class_column = report["classes"]["column"]
    lines += _section(f"Images per {class_column} and split", _nested_table("split", report["classes"]["by_split"]))
    partition_rows = [
        [name, counts["images"], _text(counts["patients"]), *counts["classes"].values()]
        for name, counts in report["partitions"]["by_partition"].items()
    ]
    class_names = list(next(iter(report["partitions"]["by_partition"].values()))["classes"]) if partition_rows else []
    lines += _section(
        f"Images per {word} (as the bundle splits them)",
        _table([word, "images", "patients", *[f"{class_column} {c}" for c in class_names]], partition_rows),
    )
    for column, counts in report["columns"].items():
        lines += _section(f"Images per {column}", _table([column, "images"], list(counts.items())))
    if report["images_per_group"]:
        rows = [
            [column, s["groups"], s["min"], s["median"], s["max"]] for column, s in report["images_per_group"].items()
        ]
        lines += _section("Images per group", _table(["group", "groups", "min", "median", "max"], rows))

    unreadable = report["unreadable"]
    rows = [[_text(f["image"]), _text(f["image_id"]), _text(f["patient_id"]), f["error"]] for f in unreadable["files"]]
    lines += _section(
        f"Unreadable images ({unreadable['count']})", _table(["file", "image_id", "patient", "reason"], rows)
    )

    lines += _section("Storage formats", _table(["format", "images"], list(report["formats"].items())))
    lines += _section(
        "Channels as stored (PNG/JPEG)", _table(["channels", "images"], list(report["channels"].items()))
    )
    syntaxes = [[uid, s["name"], s["images"]] for uid, s in report["transfer_syntaxes"].items()]
    lines += _section("DICOM transfer syntaxes", _table(["UID", "name", "images"], syntaxes))
    lines += _section("Bits stored", _table(["bits", "images"], list(report["bit_depths"].items())))
    photometric = list(report["photometric_interpretations"].items())
    lines += _section(
        "DICOM photometric interpretations", _table(["photometric interpretation", "images"], photometric)
    )
    size = report["image_size"]
    rows = [[axis, size[axis]["min"], size[axis]["median"], size[axis]["max"]] for axis in ("rows", "columns")]
    body = _table(["", "min", "median", "max"], rows)
    body += ["", f"{size['n_large']} image(s) with more than {size['large_factor']}x the median pixel count."]
    body += [f"- `{e['image']}`: {e['rows']}x{e['columns']}" for e in size["large"][:_MAX_SHOWN]]
    lines += _section("Image size", body)

    for kind, section in report["duplicates"].items():
        header = (
            f"{kind.capitalize()} duplicates: {section['pairs']} pair(s), {section['leakage']} across {_plural(word)}"
        )
        lines += _section(header, _pair_table(section, word))
    several = report["patients_in_several_partitions"]
    rows = [[p["patient_id"], ", ".join(f"{k}: {n}" for k, n in p["partitions"].items())] for p in several]
    lines += _section(
        f"Patients in more than one {word} ({len(several)})", _table(["patient", f"images per {word}"], rows)
    )
    if "breast_crop" in report:
        lines += _crop_markdown(report["breast_crop"])
    return "\n".join(lines)


def _crop_markdown(crop: dict) -> list[str]:
    """The breast crop section: found share, box sizes relative to the image, images kept whole and outliers."""
    body = [
        f"Breast found in {crop['found']} of {crop['images']} readable images; whole image kept for "
        f"{crop['images'] - crop['found']} ({crop['fallback_share']:.1%}). Box size as a fraction of the image:",
        "",
    ]
    quantiles = list(crop["box_area"])
    body += _table(["", *quantiles], [[key.replace("_", " "), *(f"{v:.2f}" for v in crop[key].values())]
                                      for key in ("box_area", "box_height", "box_width") if crop[key]])  # fmt: skip
    for title, rows in (("Kept whole", crop["fallbacks"]), ("Boxes of unusual size", crop["outliers"])):
        if rows:
            body += ["", f"{title} ({len(rows)}):", ""]
            body += _table(["image_id", "box area", "reason"],
                           [[r["image_id"], f"{r['box_area']:.2f}", r["reason"]] for r in rows[:_MAX_SHOWN]])  # fmt: skip
    return _section("Breast crop", body)


def _section(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *body, ""]


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table of at most ``_MAX_SHOWN`` rows, or "none"."""
    if not rows:
        return ["none"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows[:_MAX_SHOWN]]
    if len(rows) > _MAX_SHOWN:
        lines.append(f"\n... and {len(rows) - _MAX_SHOWN} more (see data_check.json).")
    return lines


def _nested_table(key_name: str, nested: dict[str, dict[str, int]]) -> list[str]:
    """Table of ``{row: {column: count}}`` with a total column."""
    if not nested:
        return ["none"]
    columns = list(next(iter(nested.values())))
    rows = [[key, *counts.values(), sum(counts.values())] for key, counts in nested.items()]
    return _table([key_name, *columns, "total"], rows)


def _pair_table(section: dict, word: str) -> list[str]:
    """Duplicate pairs: both images with patient and fold/split, and whether the pair leaks."""
    rows = []
    for entry in section["listed"]:
        a, b = entry["a"], entry["b"]
        rows.append(
            [
                "**leakage**" if entry["leakage"] else ("same patient" if entry["same_patient"] else "-"),
                *([entry["distance"]] if "distance" in entry else []),
                f"`{a['image']}`",
                _text(a["patient_id"]),
                a["partition"],
                f"`{b['image']}`",
                _text(b["patient_id"]),
                b["partition"],
            ]
        )
    distance = ["distance"] if section["listed"] and "distance" in section["listed"][0] else []
    headers = ["", *distance, "image A", "patient A", f"{word} A", "image B", "patient B", f"{word} B"]
    return _table(headers, rows)
