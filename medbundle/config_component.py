"""A component of another config file, parsed with the caller's settings: one chain declared once, used by two configs.

A bundle's ``inference.yaml`` must stay self-contained (deployment tools read it alone), and validation must
preprocess exactly as inference does, because the stored decision thresholds were chosen on validation
predictions. So ``inference.yaml`` declares the deterministic preprocessing, and ``train.yaml`` builds the same
chain from it, with its own values of the settings the chain reads::

    deterministic_transforms:
      _target_: medbundle.config_component.config_component
      config_file: "$@config_dir + '/inference.yaml'"
      id: deterministic_transforms
      settings: {image_size: "@image_size", reduced_decode: "@reduced_decode"}

MONAI's ``%file#id`` macro cannot do this: it opens ``file`` relative to the working directory, not to the config
that names it, so the bundle would run from one directory only. Here ``config_dir`` is an ordinary key.

The component may read nothing of its file but `settings`: a value the file sets for itself (in ``inference.yaml``
e.g. the image size stored in the checkpoint) would otherwise leak silently into the caller's chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["config_component"]


def _unset_references(parser: Any, id: str, settings: Mapping[str, Any]) -> list[str]:
    """The ids that component `id` references outside itself and that `settings` does not set.

    A reference into a setting (``@image_size#0`` with ``image_size`` set) counts as set.
    """
    from monai.bundle import ReferenceResolver

    id = ReferenceResolver.normalize_id(id)
    inside = id + ReferenceResolver.sep
    keys = [ReferenceResolver.normalize_id(key) for key in settings]
    refs = ReferenceResolver.find_refs_in_config(parser[id], id)
    return [
        ref for ref in refs
        if ref != id and not ref.startswith(inside)
        and not any(ref == key or ref.startswith(key + ReferenceResolver.sep) for key in keys)
    ]  # fmt: skip


def config_component(config_file: str | Path, id: str, settings: Mapping[str, Any]) -> Any:
    """Parse component `id` of `config_file` with `settings` replacing the top-level keys of that file.

    Args:
        config_file: the config that declares the component, e.g. ``<bundle>/configs/inference.yaml``.
        id: the component, e.g. ``deterministic_transforms``.
        settings: ``{key: value}`` for every key the component references, from the calling config.

    Returns:
        The parsed (instantiated) component.

    Raises:
        FileNotFoundError: `config_file` does not exist.
        KeyError: `config_file` has no `id`.
        ValueError: the component references a key of its file that `settings` does not set.
    """
    from monai.bundle import ConfigParser

    path = Path(config_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: it declares `{id}` for this config. Run from the directory the bundle's default "
            "paths are relative to (the repository root), or point config_dir at the bundle's configs folder "
            "(--config_dir <bundle>/configs)."
        )
    parser = ConfigParser()
    parser.read_config(str(path))
    if id not in parser:
        raise KeyError(f"{path} has no `{id}`: declare the shared component there, or fix the id in the calling config.")
    parser.resolve_macro_and_relative_ids()  # relative ids (@#x) made absolute, so that they are recognised
    unset = _unset_references(parser, id, settings)
    if unset:
        raise ValueError(
            f"`{id}` of {path} reads {unset}, which the calling config does not pass: add them to its settings, so "
            "that one value decides both configs' chains."
        )
    parser.update(dict(settings))
    return parser.get_parsed_content(id)
