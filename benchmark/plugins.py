"""Finding submissions: the ``submissions/`` folder, a file path, or an entry point.

* built-in: every :class:`Submission` subclass with a ``name`` in the modules
  of the repository's ``submissions/`` folder (installed as
  ``serbench.baselines``) and of ``SERBENCH_SUBMISSIONS_DIR`` if set;
* a file: ``path/to/file.py:ClassName``;
* a package: the ``serbench.submissions`` entry-point group
  (``name = "package.module:ClassName"``).

Loading a submission runs its code: only load submissions you trust (see the
README's trust model).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import sys
from importlib import metadata
from pathlib import Path

from .errors import InputError
from .submission import Submission

ENTRY_POINT_GROUP = "serbench.submissions"


def _classes(module) -> list[type[Submission]]:
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Submission) and obj is not Submission and obj.name
            and obj.__module__ == module.__name__]


def _load_file(path: Path, module_name: str | None = None):
    name = module_name or f"serbench_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError("not a Python file", file=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise InputError(f"importing the submission failed: {type(exc).__name__}: {exc}",
                         file=path, fix="run the file with python to see the full error") from exc
    return module


def builtin() -> dict[str, type[Submission]]:
    """The baselines and the submissions of ``SERBENCH_SUBMISSIONS_DIR`` (a file there that
    fails to import is left out: :func:`broken` says which and why)."""
    found: dict[str, type[Submission]] = {}
    import serbench.baselines as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"serbench.baselines.{info.name}")
        for cls in _classes(module):
            found[cls.name] = cls
    found.update(_private()[0])
    return found


#: Files of ``SERBENCH_SUBMISSIONS_DIR`` that failed to import in the latest discovery.
_BROKEN: dict[str, str] = {}


def broken() -> dict[str, str]:
    """Files of ``SERBENCH_SUBMISSIONS_DIR`` that failed to import when the submissions were
    last discovered (:func:`builtin`, :func:`available`) -> the error: one broken private
    submission must not hide the others (or the baselines)."""
    return dict(_BROKEN)


def _private() -> tuple[dict[str, type[Submission]], dict[str, str]]:
    extra = os.environ.get("SERBENCH_SUBMISSIONS_DIR")
    found: dict[str, type[Submission]] = {}
    failed: dict[str, str] = {}
    if not extra:
        _BROKEN.clear()
        return found, failed
    if not Path(extra).is_dir():
        raise InputError(f"SERBENCH_SUBMISSIONS_DIR={extra} is not a folder",
                         fix="point it at a folder of submission .py files, or unset it")
    for path in sorted(Path(extra).glob("*.py")):
        try:
            module = _load_file(path)
        except InputError as exc:
            failed[str(path)] = exc.problem
            continue
        for cls in _classes(module):
            found[cls.name] = cls
    _BROKEN.clear()
    _BROKEN.update(failed)
    return found, failed


def entry_points() -> dict[str, type[Submission]]:
    found: dict[str, type[Submission]] = {}
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
        except Exception as exc:
            raise InputError(f"entry point {ep.name} = {ep.value} failed to load: {exc}",
                             fix="reinstall the package that provides it") from exc
        if not (inspect.isclass(cls) and issubclass(cls, Submission)):
            raise InputError(f"entry point {ep.name} = {ep.value} is not a Submission subclass")
        found[ep.name] = cls
    return found


def available() -> dict[str, tuple[type[Submission], str]]:
    """Every discoverable submission: name -> (class, where it came from)."""
    out = {name: (cls, "submissions/") for name, cls in builtin().items()}
    for name, cls in entry_points().items():
        out.setdefault(name, (cls, f"entry point {ENTRY_POINT_GROUP}"))
    return out


def resolve(ref: str) -> type[Submission]:
    """A submission class from a name, ``file.py:Class`` or ``file.py``."""
    if ":" in ref or ref.endswith(".py"):
        file, _, cls_name = ref.partition(":")
        path = Path(file)
        if not path.is_file():
            raise InputError("submission file not found" if not path.exists() else
                             "a folder, not a submission file", file=path,
                             fix="pass --submission path/to/file.py[:ClassName], or a name from "
                                 "`serbench submissions list`")
        classes = {c.__name__: c for c in _classes(_load_file(path))}
        if cls_name:
            if cls_name not in classes:
                defined = (f"it defines {', '.join(sorted(classes))}" if classes else
                           "it defines none")
                raise InputError(f"no Submission subclass {cls_name!r} with a name in the file "
                                 f"({defined})", file=path,
                                 fix="a submission subclasses serbench.Submission and sets "
                                     "`name = \"...\"`; pass file.py:ThatClass")
            return classes[cls_name]
        if len(classes) != 1:
            raise InputError(f"the file defines {len(classes)} submissions {sorted(classes)}",
                             file=path, fix="say which one: file.py:ClassName")
        return next(iter(classes.values()))
    found = available()
    if ref not in found:
        import difflib

        close = difflib.get_close_matches(ref.lower().replace("_", "-"), list(found), n=1)
        failed = "".join(f"; {path} could not be imported ({why})"
                         for path, why in broken().items())
        raise InputError(f"unknown submission {ref!r}"
                         + (f" (did you mean {close[0]!r}?)" if close else "")
                         + f"; known: {', '.join(sorted(found))}{failed}",
                         fix="fix the file that could not be imported" if failed else
                         "`serbench submissions list`, or pass path/to/file.py:ClassName")
    return found[ref][0]
