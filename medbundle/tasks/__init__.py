"""The task registry: one declarative :class:`TaskSpec` per task, from which every per-task table is read.

``get_task("isic").demo.writer``, ``.sweep.metrics``, ``.ensemble``, ``.download``, ``.benchmark``: each
tool reads what it needs; nothing outside the task's own module names a task. Torch-free.
"""

from medbundle.tasks.registry import (
    BUILTIN,
    ENTRY_POINT_GROUP,
    TASK_PATH_ENV,
    get_task,
    register,
    task_names,
    tasks,
)
from medbundle.tasks.spec import (
    BenchmarkFacts,
    DemoFacts,
    DownloadFacts,
    SweepFacts,
    TaskSpec,
    resolve,
)

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "TASK_PATH_ENV",
    "BenchmarkFacts",
    "DemoFacts",
    "DownloadFacts",
    "SweepFacts",
    "TaskSpec",
    "get_task",
    "register",
    "resolve",
    "task_names",
    "tasks",
]
