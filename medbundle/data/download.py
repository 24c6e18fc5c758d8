"""Download a task's Kaggle data with ``kagglehub`` and arrange it in the layout its bundle reads.

Datasets of class folders (chest X-ray) become ``<out>/<split>/<Class>/...``; competition files (ISIC 2024)
are placed in ``<out>`` under their Kaggle names.

Kaggle archives wrap their splits in folders of their own choosing (``Lung Disease Dataset/train``,
sometimes twice over, sometimes next to a ``__MACOSX`` copy), so the splits are found by name at any
depth instead of by a hard-coded root.  Files are hard-linked from kagglehub's cache when the file
system allows it, so the arranged copy costs no extra disk space.

Every failure is a :class:`DownloadError` whose text is the complete advice for the user, including
the manual route for machines without internet.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from medbundle.tasks import tasks

__all__ = ["DownloadError", "download_dataset", "kaggle_sources"]

logger = logging.getLogger(__name__)

_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_REQUIRED = ("train", "val")
# exception class names (anywhere in the cause chain) that kagglehub 1.0.3 / requests / urllib3 raise
_CREDENTIAL_ERRORS = {"UnauthenticatedError", "CredentialError"}
_NETWORK_ERRORS = {
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Timeout",
    "MaxRetryError",
    "NameResolutionError",
    "NewConnectionError",
    "ProxyError",
    "SSLError",
}
_HTTP_UNAUTHORIZED = {401, 403}


class DownloadError(RuntimeError):
    """A dataset could not be downloaded or arranged; ``str()`` is the complete message for the user."""


def kaggle_sources() -> dict:
    """Every registered task with public data, and where it comes from (:class:`medbundle.tasks.DownloadFacts`)."""
    return {name: spec.download for name, spec in tasks().items() if spec.download is not None}


def _layout(out: Path) -> str:
    return f"{out}/train/<Class>/..., {out}/val/<Class>/..., {out}/test/<Class>/..."


def _manual(handle: str, out: Path) -> str:
    if handle.startswith("competitions/"):
        name = handle.removeprefix("competitions/")
        files = ", ".join(next((f.files for f in kaggle_sources().values() if f.competition and f.handle == name), ()))
        return (
            f"accept the rules at https://www.kaggle.com/{handle}/rules, download {files} from "
            f"https://www.kaggle.com/{handle}/data on a machine with internet and copy them to {out}, then run again."
        )
    return (
        f"download the dataset from https://www.kaggle.com/datasets/{handle} on a machine with internet "
        f"and copy it to {out} arranged as {_layout(out)}, then run again."
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_credentials(exc: BaseException) -> bool:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    # kagglehub raises ValueError("Invalid Kaggle credentials file at ...") for a malformed kaggle.json
    malformed = isinstance(exc, ValueError) and "credentials" in str(exc).lower()
    return type(exc).__name__ in _CREDENTIAL_ERRORS or status in _HTTP_UNAUTHORIZED or malformed


def _is_network(exc: BaseException) -> bool:
    return type(exc).__name__ in _NETWORK_ERRORS or isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror))


def _download_error(exc: Exception, handle: str, out: Path) -> DownloadError:
    """Translate a kagglehub failure into advice, by duck typing: kagglehub's classes vary by version."""
    cause = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if any(_is_credentials(e) for e in _causes(exc)):
        return DownloadError(
            f"Kaggle refused the download of {handle} for lack of valid credentials ({cause}). "
            "Set KAGGLE_USERNAME and KAGGLE_KEY, or create ~/.kaggle/kaggle.json containing "
            '{"username": "<your username>", "key": "<your API key>"} with mode 600 '
            "(chmod 600 ~/.kaggle/kaggle.json), or run python -c 'import kagglehub; kagglehub.login()'. "
            "The key is created at https://www.kaggle.com/settings, section API. "
            f"Or {_manual(handle, out)}"
        )
    if any(_is_network(e) for e in _causes(exc)):
        return DownloadError(f"No connection to Kaggle ({cause}). To work offline, {_manual(handle, out)}")
    return DownloadError(
        f"Downloading {handle} from Kaggle failed ({cause}). Try again later, or {_manual(handle, out)}"
    )


def _visible(names: list[str]) -> list[str]:
    # macOS zips add __MACOSX/ copies of every folder, holding "._name" resource forks that are not images
    return sorted(name for name in names if not name.startswith(".") and name != "__MACOSX")


def _find_splits(source: Path) -> dict[Path, dict[str, Path]]:
    """Folders holding split folders (train/val/test by any common name) whose children are class folders."""
    roots: dict[Path, dict[str, Path]] = {}
    for folder, dirs, _ in os.walk(source):
        dirs[:] = _visible(dirs)
        split = _SPLITS.get(Path(folder).name.lower())
        if split is None or not dirs:
            continue
        classes = [Path(folder, name) for name in dirs]
        if any(any(c.iterdir()) for c in classes):
            roots.setdefault(Path(folder).parent, {}).setdefault(split, Path(folder))
    return roots


def _describe(source: Path, roots: dict[Path, dict[str, Path]]) -> str:
    if roots:
        return "; ".join(
            f"{root.relative_to(source)}/ holds {sorted(splits)}" for root, splits in sorted(roots.items())
        )
    entries = _visible(os.listdir(source))
    return f"top-level entries {entries[:10]}" if entries else "an empty folder"


def _place(source: Path, target: Path, link: bool) -> bool:
    """Hard-link `source` to `target`, or copy it; returns whether linking still works on this file system."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target)
            return True
        except OSError:
            logger.info("Cannot hard-link from %s (another file system?); copying instead.", source.parent)
    shutil.copy2(source, target)
    return False


def _arrange(splits: dict[str, Path], out: Path, staging: Path) -> int:
    """Mirror each split's class folders into `staging`, then move the splits into `out`, train last.

    An interrupted run leaves no ``train/`` beside ``val/``, so the next run does not take a
    partial copy for a finished one.
    """
    if staging.exists():
        shutil.rmtree(staging)
    link, n_files = True, 0
    for split, folder in splits.items():
        for directory, dirs, files in os.walk(folder):
            dirs[:] = _visible(dirs)
            relative = Path(directory).relative_to(folder)
            if relative == Path("."):
                continue  # loose files beside the class folders belong to no class
            for name in _visible(files):
                link = _place(Path(directory, name), staging / split / relative / name, link)
                n_files += 1
    for split in sorted(splits, key=lambda s: s == "train"):
        if (out / split).exists():
            shutil.rmtree(out / split)
        os.replace(staging / split, out / split)
    staging.rmdir()
    return n_files


def download_dataset(task: str, out: str | Path, force: bool = False) -> Path:
    """Download the Kaggle data of `task` and arrange it as its bundle reads it.

    A dataset of class folders becomes ``<out>/{train,val,test}/<Class>/...``, skipped when `out` already
    holds ``train/`` and ``val/``; a competition's files (its task's ``download.files``) are placed in `out`,
    skipped when all are there.  kagglehub keeps its own cache
    (``~/.cache/kagglehub``, or ``$KAGGLEHUB_CACHE``), so a repeated call does not download again.

    Args:
        task: a registered task with ``download`` facts (:func:`kaggle_sources`: a data set for chest_xray, a
            competition for isic).
        out: dataset directory the bundle reads.
        force: arrange again even if `out` holds the splits, replacing ``<out>/{train,val,test}``.

    Returns:
        `out`, as a Path.

    Raises:
        DownloadError: unknown task, kagglehub missing, no credentials or connection, or no
            train/val class folders in the download; the message says what to do.
    """
    sources = kaggle_sources()
    if task not in sources:
        raise DownloadError(
            f"No Kaggle dataset is known for task {task!r}; choose one of {sorted(sources)}, "
            f"or arrange your data yourself as {_layout(Path(out))}."
        )
    if sources[task].competition:
        return _download_competition(sources[task].handle, sources[task].files, Path(out), force=force)
    out = Path(out)
    if not force and all((out / split).is_dir() for split in _REQUIRED):
        logger.info("%s already holds train/ and val/; not downloading (pass force to arrange it again).", out)
        return out
    handle = sources[task].handle
    kagglehub = _kagglehub(handle, out)
    logger.info("Downloading %s from Kaggle (kagglehub caches it) ...", handle)
    try:
        source = Path(kagglehub.dataset_download(handle))
    except Exception as exc:
        raise _download_error(exc, handle, out) from exc

    roots = _find_splits(source)
    # archives often hold the splits twice (a folder inside a same-named folder): take the shallowest
    complete = sorted(
        (root for root, splits in roots.items() if set(_REQUIRED) <= set(splits)),
        key=lambda root: (len(root.parts), str(root)),
    )
    if not complete:
        raise DownloadError(
            f"The Kaggle download of {handle} at {source} has no train/ and val/ folders of class folders "
            f"(found {_describe(source, roots)}). Arrange the data yourself as {_layout(out)}."
        )
    if len(complete) > 1:
        logger.info("The download holds the splits %d times; using %s.", len(complete), complete[0])
    out.mkdir(parents=True, exist_ok=True)
    n_files = _arrange(roots[complete[0]], out, out / f".{task}-arranging")
    logger.info("Arranged %d files of %s into %s (%s).", n_files, handle, out, ", ".join(sorted(roots[complete[0]])))
    return out


def _kagglehub(handle: str, out: Path):
    """The kagglehub module, or a DownloadError that says how to install it or download by hand."""
    try:
        import kagglehub
    except ImportError as exc:
        raise DownloadError(
            f"Downloading {handle} needs the kagglehub package: pip install kagglehub. Or {_manual(handle, out)}"
        ) from exc
    return kagglehub


def _download_competition(name: str, files: tuple[str, ...], out: Path, force: bool = False) -> Path:
    """Download a competition's data and place `files` in `out` (hard links into kagglehub's cache when possible).

    Each file is placed under a temporary name and renamed, so an interrupted run never leaves a partial file
    under a name the bundle reads.
    """
    handle = f"competitions/{name}"
    if not force and all((out / file).is_file() for file in files):
        logger.info("%s already holds %s; not downloading (pass force to place them again).", out, ", ".join(files))
        return out
    kagglehub = _kagglehub(handle, out)
    logger.info("Downloading the %s competition data from Kaggle (kagglehub caches it) ...", name)
    try:
        source = Path(kagglehub.competition_download(name))
    except Exception as exc:
        raise _download_error(exc, handle, out) from exc
    found = {file: sorted(source.rglob(file), key=lambda path: len(path.parts)) for file in files}
    absent = [file for file, paths in found.items() if not paths]
    if absent:
        raise DownloadError(
            f"The Kaggle download of {handle} at {source} lacks {absent} ({_describe(source, {})}). "
            f"Download them by hand: {_manual(handle, out)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    link = True
    for file, paths in found.items():
        partial = out / f".{file}.partial"
        partial.unlink(missing_ok=True)
        link = _place(paths[0], partial, link)
        os.replace(partial, out / file)
    logger.info("Placed %s of %s in %s.", ", ".join(files), handle, out)
    return out
