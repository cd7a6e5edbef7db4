"""Where task definitions are found: ``tasks/<name>/task.yaml``.

The repository's ``tasks/`` folder is installed as the package
``serbench.task_definitions``; ``SERBENCH_TASKS_DIR`` points elsewhere (a lab's
private tasks) and is searched first.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from ..errors import InputError
from .spec import TaskSpec, load_spec

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def task_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("SERBENCH_TASKS_DIR")
    if env:
        if not Path(env).is_dir():
            from ..errors import InputError

            raise InputError(f"SERBENCH_TASKS_DIR={env} is not a folder",
                             fix="point it at a folder of <task>/task.yaml files, or unset it")
        dirs.append(Path(env))
    dirs.append(Path(str(resources.files("serbench.task_definitions"))))
    return dirs


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            f"bad task name {name!r}",
            fix="task names are lower-case letters, digits, '.', '_' and '-'",
        )
    return name


def task_dir(name: str) -> Path:
    """The folder of a task (the first search path that has it)."""
    check_name(name)
    for d in task_dirs():
        if (d / name / "task.yaml").exists():
            return d / name
    import difflib

    known = list_tasks()
    close = difflib.get_close_matches(name.lower().replace("_", "-"), known, n=1)
    raise InputError(
        f"unknown task {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        + f"; known: {', '.join(known) or 'none'}",
        fix="`serbench tasks list` shows the tasks",
    )


def list_tasks() -> list[str]:
    names: set[str] = set()
    for d in task_dirs():
        if d.is_dir():
            names.update(p.parent.name for p in d.glob("*/task.yaml"))
    return sorted(names)


def get_spec(name: str) -> TaskSpec:
    spec = load_spec(task_dir(name) / "task.yaml")
    if spec.name != name:
        raise InputError(
            f"task file says name {spec.name!r} but lives in folder {name!r}",
            file=spec.path,
            fix="make the folder name and `name:` agree",
        )
    return spec
