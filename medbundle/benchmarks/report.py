"""One benchmark result: a table of rows printed as markdown and written as JSON, with the machine it ran on.

Every subcommand of `scripts/benchmark.py` returns a `Report`, so each prints exactly one table and writes one JSON
file, and ``BENCHMARKS.md`` is rendered from those files (`medbundle.benchmarks.full`) rather than copied by hand.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU model and cores, torch threads, library versions, GPU if any."""
    import cv2
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for module in ("monai", "timm", "pydicom", "onnxruntime"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


@dataclass
class Report:
    """A benchmark's table.

    Attributes:
        name: the subcommand (also the JSON file's stem).
        title: one line saying what was timed, how (threads, repeats) and what the reference is.
        columns: (row key, column header) pairs, in table order; rows may hold more keys (JSON only).
        rows: one dict per table row.
        notes: lines printed under the table (verdicts, profiles, tolerances).
        settings: the arguments of the run (JSON only).
    """

    name: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        """The title, the table and the notes as markdown."""
        lines = [self.title, "", "| " + " | ".join(header for _, header in self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(_cell(row.get(key)) for key, _ in self.columns) + " |" for row in self.rows]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Everything, plus the machine, as plain JSON types."""
        return {**asdict(self), "columns": [list(c) for c in self.columns], "machine": machine()}

    def write(self, path: str | Path) -> Path:
        """Write the JSON (atomically: a half-written file never replaces a good one); the path written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        os.replace(partial, path)
        return path

    @classmethod
    def read(cls, path: str | Path) -> Report:
        """A report written by `write` (the machine is dropped: it is re-read on writing)."""
        data = json.loads(Path(path).read_text())
        data.pop("machine", None)
        data["columns"] = [tuple(c) for c in data["columns"]]
        return cls(**data)
