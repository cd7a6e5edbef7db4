"""Tasks: frozen definitions of class sets, folds and MR/PR/AR targets."""

from .registry import get_spec, list_tasks, task_dir
from .spec import TaskSpec, load_spec
from .task import Split, Task, freeze, load_task, prepare

__all__ = [
    "Split",
    "Task",
    "TaskSpec",
    "freeze",
    "get_spec",
    "list_tasks",
    "load_spec",
    "load_task",
    "prepare",
    "task_dir",
]
