"""rsna's DICOM data path: decode + VOI + breast crop + flip + resize + CLAHE against plain pydicom + OpenCV.

`dicom` times the bundle's ``cached_transforms`` (what fills the cache) on a folder of DICOMs; `dicom_reduce` does so
per transfer syntax with reduced-resolution JPEG 2000 decoding on and off, and reports its accuracy.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from medbundle.benchmarks.common import best_seconds, bundle_parser, psnr
from medbundle.benchmarks.report import Report

PLAIN = "pydicom + VOI + cv2 resize + CLAHE"


def plain_dicom_reference(path: str, image_size: list[int]):
    """The plain reference pipeline: pydicom ``pixel_array``, modality + VOI LUT (pydicom's ``apply_voi_lut``), min-max
    to [0, 1], MONOCHROME1 inverted, one OpenCV ``INTER_AREA`` resize to `image_size`, 8-bit CLAHE (clip 2, 8x8 tiles).
    It does no breast crop: the bundle does more work than this reference."""
    import cv2
    import numpy as np
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float32)
    low, high = float(values.min()), float(values.max())
    image = (values - low) / max(high - low, 1e-6)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        image = 1.0 - image
    image = cv2.resize(image, (image_size[1], image_size[0]), interpolation=cv2.INTER_AREA)
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(np.round(image * 255).astype(np.uint8))


def rsna_chain(image_size: list[int], reduced_decode: bool | None = None):
    """The rsna bundle's ``cached_transforms`` at `image_size`; `reduced_decode` None keeps train.yaml's setting."""
    from monai.transforms import Compose

    overrides = {"image_size": list(image_size)}
    if reduced_decode is not None:
        overrides["reduced_decode"] = reduced_decode
    return Compose(bundle_parser("rsna", **overrides).get_parsed_content("cached_transforms"))


@functools.lru_cache(maxsize=4)
def _chain(image_size: tuple[int, ...]):
    return rsna_chain(list(image_size))


def _pipeline(pipeline: str, path: str, image_size: list[int]) -> Callable[[], object]:
    if pipeline == "bundle":
        chain = _chain(tuple(image_size))
        return lambda: chain({"image": path, "label": [0.0]})  # the chain also casts the label
    return lambda: plain_dicom_reference(path, image_size)


def _warm_up(pipeline: str, path: str, image_size: list[int], ready) -> None:
    """Pool initializer: one call (imports, codec set-up, the chain's parsing), then wait for the others."""
    _pipeline(pipeline, path, image_size)()
    ready.wait()


def _timed(pipeline: str, path: str, image_size: list[int], repeats: int) -> float:
    """Seconds of `pipeline` ("bundle" or "plain") on `path`, best of `repeats` calls."""
    return best_seconds(_pipeline(pipeline, path, image_size), repeats)


def _pool_run(pipeline: str, paths: list[str], image_size: list[int], workers: int,
              repeats: int) -> tuple[list[float], float]:
    """Each file's best call seconds and the wall clock of all files (`repeats` calls each) in a pool of `workers`
    warmed-up processes."""
    ready = multiprocessing.Barrier(workers + 1)
    with multiprocessing.Pool(workers, _warm_up, (pipeline, paths[0], image_size, ready)) as pool:
        ready.wait()
        start = time.perf_counter()
        per_image = pool.starmap(_timed, [(pipeline, p, image_size, repeats) for p in paths], chunksize=1)
        return per_image, time.perf_counter() - start


def dicom(
    folder: str = "../shared/data/dicom", image_size: tuple[int, int] = (1024, 512), workers: int = 1, repeats: int = 3
) -> Report:
    """Images/s of decoding, of the rsna bundle's cached chain and of the plain reference on every readable DICOM.

        python scripts/benchmark.py dicom --folder ../shared/data/dicom

    `decode`: `medbundle.io.read_dicom` alone (pixel data + VOI, full resolution). `bundle`: the rsna bundle's
    ``cached_transforms`` as train.yaml sets them (decode, breast crop, flip, aspect resize, CLAHE; reduced JPEG
    2000 decoding when on). `plain`: pydicom + VOI + one cv2 resize + CLAHE, no crop. Each pipeline runs over all
    files in a pool of `workers` processes, each warmed up by one call (imports, codecs, parsing the config), each
    file `repeats` times: images/s per worker is images / summed best seconds per file, the pool's is images x
    `repeats` / wall clock after the warm-up. Unreadable files are counted and
    skipped.

    Args:
        folder: DICOM files (``*.dcm``).
        image_size: the bundle's input size (rows, columns).
        workers: processes of the pool runs.
        repeats: calls per file and pipeline.
    """
    from medbundle.io import DicomReadError, read_dicom

    image_size = list(image_size)
    paths, skipped, decode_s, megapixels = [], 0, [], 0.0
    for path in sorted(Path(folder).glob("*.dcm")):
        try:
            image, _ = read_dicom(path)
        except DicomReadError:
            skipped += 1
            continue
        decode_s.append(best_seconds(lambda p=path: read_dicom(p), repeats))
        megapixels += image.size / 1e6
        paths.append(str(path))
    if not paths:
        raise FileNotFoundError(f"{folder}: no readable *.dcm file; pass --folder with DICOM files")
    rows = [{"pipeline": "decode only (read_dicom)", "per_worker": len(paths) / sum(decode_s)}]
    for name, pipeline in (("bundle cached_transforms", "bundle"), (f"plain: {PLAIN}", "plain")):
        per_image, wall = _pool_run(pipeline, paths, image_size, workers, repeats)
        rows.append({"pipeline": name, "per_worker": len(paths) / sum(per_image),
                     "median_s": statistics.median(per_image), "pool": len(paths) * repeats / wall})
    plain = rows[-1]["per_worker"]
    for row in rows:
        row["over_plain"] = row["per_worker"] / plain
    return Report(
        name="dicom",
        title=(f"rsna DICOM data path: {len(paths)} readable files ({megapixels / len(paths):.1f} MP mean, {skipped} "
               f"unreadable skipped) to {image_size[0]}x{image_size[1]}; images/s per worker (best of {repeats} calls per "
               f"file) and of a pool of {workers} worker(s) (wall clock after a warm-up call per worker)"),
        columns=[("pipeline", "pipeline"), ("per_worker", "images/s per worker"), ("over_plain", "/ plain"),
                 ("median_s", "median s per image"), ("pool", f"images/s, {workers} workers")],
        rows=rows,
        settings={"folder": str(folder), "image_size": image_size, "workers": workers, "repeats": repeats,
                  "images": len(paths),
                  "unreadable_skipped": skipped},
    )


def _sources(folder: str, demo_shape: tuple[int, int] | None, demo_patients: int, work: Path) -> list[tuple[str, list]]:
    """(source name, DICOM paths): the files of `folder`, then a synthetic RSNA set at `demo_shape` written to `work`
    (JPEG 2000 lossless, RLE and uncompressed files the size of real mammograms)."""
    sources = [("shared", sorted(Path(folder).glob("*.dcm")))]
    if demo_shape:
        from medbundle.demo import write_rsna_demo

        write_rsna_demo(work, n_patients=demo_patients, n_test_patients=0, image_shape=tuple(demo_shape))
        sources.append((f"demo {demo_shape[0]}x{demo_shape[1]}", sorted(work.rglob("*.dcm"))))
    return sources


def _accuracy(outputs: dict, full, reduced, image_size: list[int]) -> dict:
    """PSNR and max abs difference of reduced against full decoding: of the bundle's output (the breast crop found
    on each decode, its margin in source pixels), and of the decoded images resized without crop (the decoding effect
    alone)."""
    import numpy as np

    from medbundle.imaging import aspect_resize_pad

    on, off = (np.asarray(outputs[k], np.float32) for k in ("on", "off"))
    resized = [aspect_resize_pad(image[None], image_size) for image in (full, reduced)]
    return {"psnr": psnr(on, off), "max": float(np.abs(on - off).max()),
            "psnr_resize": psnr(*resized), "max_resize": float(np.abs(resized[0] - resized[1]).max())}


def dicom_reduce(
    folder: str = "../shared/data/dicom",
    image_size: tuple[int, int] = (1024, 512),
    demo_shape: tuple[int, int] | None = (3000, 2400),
    demo_patients: int = 4,
    repeats: int = 3,
    threads: int = 1,
) -> Report:
    """Decode + preprocess images/s per transfer syntax: reduced JPEG 2000 decoding on vs off vs a plain reference.

        python scripts/benchmark.py dicom_reduce --folder ../shared/data/dicom --image_size "[1024,512]"

    Every readable DICOM of `folder`, plus a synthetic RSNA demo set written at `demo_shape` (JPEG 2000 lossless,
    RLE and uncompressed files the size of real mammograms), goes through three pipelines in this process, each
    timed per file as the best of `repeats` interleaved runs: `on` and `off` are the rsna bundle's
    ``cached_transforms`` (decode, breast crop, flip, aspect resize, CLAHE) with ``reduced_decode`` true / false;
    `plain` is `plain_dicom_reference` (pydicom + VOI + one cv2 resize + CLAHE, no crop). Images/s is files /
    summed best seconds. Accuracy of `on` against `off`: PSNR (the lowest of the syntax's files) and max abs
    difference of the bundle's output (crop found on each decode; BreastCrop scales its margin by the image's
    ``reduce_level``), and of the decoded image resized to `image_size` without cropping (the decoding effect
    alone).

    Args:
        folder: DICOM files (``*.dcm``); unreadable ones are counted and skipped.
        image_size: the bundle's input size (rows, columns).
        demo_shape: (rows, columns) of the demo images; None for no demo files.
        demo_patients: demo patients (4 images each, JPEG 2000 and RLE/uncompressed by site).
        repeats: timed runs per file and pipeline.
        threads: torch and OpenCV threads (1: images/s per core).
    """
    import cv2
    import pydicom
    import torch

    from medbundle.io import DicomReadError, read_dicom

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    image_size = list(image_size)
    chains = {"on": rsna_chain(image_size, True), "off": rsna_chain(image_size, False)}
    rows: dict[tuple[str, str], dict] = {}
    skipped = 0
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_dicom_") as work:
        sources = _sources(folder, demo_shape, demo_patients, Path(work))
        for source, paths in sources:
            for path in map(str, paths):
                try:
                    full, meta = read_dicom(path)
                except DicomReadError:
                    skipped += 1
                    continue
                reduced, reduced_meta = read_dicom(path, image_size)
                runs = {name: (lambda c=chain, p=path: c({"image": p, "label": [0.0]})["image"])
                        for name, chain in chains.items()}
                runs["plain"] = lambda p=path: plain_dicom_reference(p, image_size)
                outputs = {name: run() for name, run in runs.items()}  # warm-up, and the outputs compared
                seconds: dict[str, float] = {}
                for _ in range(repeats):  # interleaved: load from other processes hits every pipeline alike
                    for name, run in runs.items():
                        seconds[name] = min(seconds.get(name, math.inf), best_seconds(run, 1))
                level = reduced_meta["reduce_level"]
                syntax = pydicom.uid.UID(meta["transfer_syntax_uid"]).name
                row = rows.setdefault((source, syntax), {"source": source, "syntax": syntax, "files": 0,
                                                         "megapixels": 0.0, "levels": set(), "seconds": {},
                                                         "accuracy": []})
                row["files"] += 1
                row["megapixels"] += full.size / 1e6
                row["levels"].add(level)
                for name, value in seconds.items():
                    row["seconds"][name] = row["seconds"].get(name, 0.0) + value
                row["accuracy"].append(_accuracy(outputs, full, reduced, image_size))
    table = []
    for row in rows.values():
        rate = {name: row["files"] / value for name, value in row["seconds"].items()}
        accuracy = row["accuracy"]
        table.append({
            "source": row["source"], "syntax": row["syntax"], "files": row["files"],
            "megapixels": row["megapixels"] / row["files"], "levels": ",".join(map(str, sorted(row["levels"]))),
            "on": rate["on"], "off": rate["off"], "plain": rate["plain"],
            "on_over_plain": rate["on"] / rate["plain"], "off_over_plain": rate["off"] / rate["plain"],
            **{key: (min if key.startswith("psnr") else max)(a[key] for a in accuracy) for key in accuracy[0]},
        })
    return Report(
        name="dicom_reduce",
        title=(f"rsna decode + preprocess to {image_size[0]}x{image_size[1]}, images/s with {threads} thread(s), best of "
               f"{repeats} per file; on/off: cached_transforms with reduced JPEG 2000 decoding on/off; plain: {PLAIN}; "
               f"{skipped} unreadable file(s) skipped; PSNR: the lowest of the files, max abs diff: the largest"),
        columns=[("source", "source"), ("syntax", "transfer syntax"), ("files", "files"), ("megapixels", "MP"),
                 ("levels", "reduce level"), ("on", "on"), ("off", "off"), ("plain", "plain"),
                 ("on_over_plain", "on/plain"), ("off_over_plain", "off/plain"), ("psnr", "PSNR on vs off (dB)"),
                 ("max", "max abs diff"), ("psnr_resize", "PSNR decode+resize"), ("max_resize", "max abs diff")],
        rows=table,
        settings={"folder": str(folder), "image_size": image_size, "demo_shape": demo_shape,
                  "demo_patients": demo_patients, "repeats": repeats, "threads": threads, "unreadable_skipped": skipped},
    )


def _plugins_of(syntax) -> tuple[list[str], list[str]]:
    """pydicom's decoding plugins for `syntax`: the available ones, and the missing ones with what they need."""
    from pydicom.pixels import get_decoder

    if not syntax.is_compressed:
        return ["native"], []
    decoder = get_decoder(syntax)
    return sorted(decoder.available_plugins), list(decoder.missing_dependencies)


def decoders(
    folder: str = "../shared/data/dicom",
    demo_shape: tuple[int, int] | None = (3000, 2400),
    demo_patients: int = 2,
    repeats: int = 3,
) -> Report:
    """Pixel-data decoding seconds per transfer syntax with every pydicom decoding plugin installed here.

        python scripts/benchmark.py decoders --folder ../shared/data/dicom

    For each readable DICOM of `folder` and of a synthetic RSNA set at `demo_shape`, ``ds.pixel_array`` (frame 0) is
    decoded by each plugin pydicom has available for its transfer syntax (pylibjpeg, pillow, gdcm, pyjpegls,
    pydicom's own RLE...), best of `repeats` after a warm-up; MP/s is megapixels / summed best seconds. `default` is
    the plugin pydicom picks when none is named (the plain reference, and what `medbundle.io.read_dicom` uses);
    `/ default` above 1 is a plugin faster than that. Plugins pydicom knows of but cannot load are listed in the
    notes with what they need. Plugins whose output differs from the default's are flagged.
    """
    import numpy as np
    import pydicom

    rates: dict[tuple[str, str], dict] = {}
    missing: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_decoders_") as work:
        sources = _sources(folder, demo_shape, demo_patients, Path(work))
        for source, paths in sources:
            for path in paths:
                try:
                    ds = pydicom.dcmread(path)
                    syntax = ds.file_meta.TransferSyntaxUID
                    ds.pixel_array_options(index=0)
                    reference = ds.pixel_array
                except Exception:  # noqa: BLE001, S112 - unreadable or undecodable: dicom and dicom_reduce count these
                    continue
                available, lacking = _plugins_of(syntax)
                missing[syntax.name] = lacking
                for plugin in ["default", *available] if syntax.is_compressed else available:
                    ds.pixel_array_options(index=0, decoding_plugin="" if plugin in ("default", "native") else plugin)

                    def decode(ds: pydicom.Dataset = ds) -> np.ndarray:
                        ds._pixel_array = None  # pydicom keeps the decoded array; decode again each call
                        ds._pixel_id = {}
                        return ds.pixel_array

                    try:
                        same = np.array_equal(decode(), reference)
                    except Exception:  # noqa: BLE001, S112 - a plugin that refuses this file (e.g. its precision)
                        continue
                    row = rates.setdefault((source, syntax.name, plugin), {"files": 0, "megapixels": 0.0,
                                                                           "seconds": 0.0, "identical": True})
                    row["files"] += 1
                    row["megapixels"] += reference.size / 1e6
                    row["seconds"] += best_seconds(decode, repeats)
                    row["identical"] &= same
    rows = []
    for (source, syntax, plugin), row in rates.items():
        default = rates.get((source, syntax, "default"), row)
        rows.append({"source": source, "syntax": syntax, "plugin": plugin, "files": row["files"],
                     "mp_per_s": row["megapixels"] / row["seconds"],
                     "over_default": default["seconds"] / row["seconds"],
                     "identical": "yes" if row["identical"] else "NO"})
    return Report(
        name="decoders",
        title=(f"pixel-data decoding, megapixels/s (frame 0, best of {repeats}, one thread), per transfer syntax and "
               "pydicom plugin; default: the plugin pydicom picks itself"),
        columns=[("source", "source"), ("syntax", "transfer syntax"), ("plugin", "plugin"), ("files", "files"),
                 ("mp_per_s", "MP/s"), ("over_default", "/ default"), ("identical", "same pixels as default")],
        rows=rows,
        notes=[f"{syntax}: not installed: {'; '.join(lacking)}" for syntax, lacking in missing.items() if lacking],
        settings={"folder": str(folder), "demo_shape": demo_shape, "demo_patients": demo_patients, "repeats": repeats},
    )
