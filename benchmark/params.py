"""A submission's declared parameters, and ``--config`` checked against them.

A submission declares its configuration as keyword arguments of its
constructor, with type hints and defaults (``def __init__(self, lr: float =
1e-3, loss: Literal["ce", "kl"] = "ce")``), the way scikit-learn estimators
declare theirs.  :func:`validate_config` checks a user's options against that
declaration before anything runs, so a typo or a wrong type is one message
naming the key, what is allowed and the fix, instead of a traceback from deep
inside ``fit`` or a silently recorded unknown key.

A constructor that forwards ``**kwargs`` to its parent's (a crowd layer on the
BLSTM backbone) declares the union of both.  A submission that declares
nothing (it takes ``**config`` itself, or has no constructor) accepts any key.

>>> from serbench.submission import Submission
>>> class Toy(Submission):
...     name = "toy"
...     def __init__(self, lr: float = 0.1, layers: int = 2) -> None:
...         super().__init__(lr=lr, layers=layers)
>>> validate_config(Toy, {"lr": 1})
{'lr': 1.0}
>>> validate_config(Toy, {"lrr": 1})
Traceback (most recent call last):
...
serbench.errors.InputError: --config lrr: toy has no option 'lrr'; its options: layers, lr
  fix: did you mean lr? (serbench run --config lr=VALUE)
"""

from __future__ import annotations

import difflib
import inspect
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from .errors import InputError

_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    """One declared option: its name, type hint (or None when unannotated) and default."""

    name: str
    hint: Any
    default: Any

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def describe(self) -> str:
        kind = _type_name(self.hint)
        return f"{self.name} ({kind})" if self.required else \
            f"{self.name} ({kind}, default {json.dumps(self.default, default=str)})"


def _type_name(hint: Any) -> str:
    if hint is None:
        return "any"
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def declared(cls: type) -> dict[str, Param] | None:
    """The options ``cls`` declares, or None when it accepts any key.

    Walks the class's constructors from the most derived: a constructor
    ending in ``**kwargs`` adds its parent's options, one without it closes the set.
    """
    params: dict[str, Param] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass.__module__ == "serbench.submission" or klass is object:
            return params or None  # the base class takes **config: open set
        try:
            hints = typing.get_type_hints(init)
        except (NameError, TypeError):  # an annotation that cannot be resolved here
            hints = {}
        open_ended = False
        for p in list(inspect.signature(init).parameters.values())[1:]:
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = True
            elif p.kind is not inspect.Parameter.VAR_POSITIONAL:
                params.setdefault(p.name, Param(p.name, hints.get(p.name), p.default))
        if not open_ended:
            return params
    return params or None


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """(ok, value) for ``value`` under ``hint``; ints are accepted (and cast) for floats."""
    if hint is None or hint is Any:
        return True, value
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint), value
    if origin in (Union, types.UnionType):
        for arm in typing.get_args(hint):
            ok, v = _coerce(value, arm)
            if ok:
                return True, v
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if hint is str:
        return isinstance(value, str), value
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)), value
    if origin is dict or hint is dict:
        return isinstance(value, dict), value
    return True, value  # a type this check does not know: the constructor decides


def validate_config(cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """The options given, checked and coerced, or one :class:`InputError`.

    Values come from JSON (``--config lr=0.01`` gives a float), so an int is
    accepted where a float is declared.  Defaults are not filled in: a
    constructor that forwards ``**kwargs`` may refuse an option it sets itself
    (:func:`defaults` gives them).
    """
    params = declared(cls)
    if params is None:
        return dict(config)
    name = getattr(cls, "name", "") or cls.__name__
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key not in params:
            close = difflib.get_close_matches(key, list(params), n=1)
            hint = f"did you mean {close[0]}? (serbench run --config {close[0]}=VALUE)" if close \
                else "see the submission's docstring for what each option does"
            raise InputError(f"--config {key}: {name} has no option {key!r}; its options: "
                             f"{', '.join(sorted(params))}", fix=hint)
        ok, coerced = _coerce(value, params[key].hint)
        if not ok:
            raise InputError(
                f"--config {key}={json.dumps(value, default=str)}: {name}.{key} must be "
                f"{_type_name(params[key].hint)}",
                fix=f"e.g. --config {key}={json.dumps(params[key].default, default=str)} "
                    f"({params[key].describe()}); strings need no quotes, JSON values "
                    "(numbers, true/false, null, lists) are parsed")
        out[key] = coerced
    missing = [p.name for p in params.values() if p.required and p.name not in out]
    if missing:
        raise InputError(f"{name} needs the option(s) {', '.join(missing)}",
                         fix=" ".join(f"--config {m}=VALUE" for m in missing))
    return out


def defaults(cls: type) -> dict[str, Any]:
    """The declared defaults (an option the record predates counts as its default)."""
    params = declared(cls) or {}
    return {p.name: p.default for p in params.values() if not p.required}


def check_range(option: str, value: float | None, *, low: float | None = None,
                high: float | None = None, open_low: bool = False, open_high: bool = False,
                none: bool = False) -> None:
    """Refuse a number outside its range with the option named (a ``ValueError``: the runner
    reports it as the submission refusing its configuration, exit 2, before any cell runs).

    A size, count or rate out of range otherwise fails deep inside torch in every cell, or
    trains nothing (``max_epochs=0``) and looks like a result.

    >>> check_range("dropout", 0.5, low=0, high=1, open_high=True)
    >>> check_range("hidden", 0, low=1)
    Traceback (most recent call last):
    ...
    ValueError: hidden must be at least 1, got 0
    """
    if value is None and none:
        return
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{option} must be a number, got {value!r}")
    bad_low = low is not None and (value <= low if open_low else value < low)
    bad_high = high is not None and (value >= high if open_high else value > high)
    if not (bad_low or bad_high):
        return
    if high is None:
        raise ValueError(f"{option} must be {'more than' if open_low else 'at least'} {low:g}, "
                         f"got {value:g}")
    lo = "(" if open_low else "["
    hi = ")" if open_high else "]"
    raise ValueError(f"{option} must be in {lo}{low:g}, {high:g}{hi}, got {value:g}")


def check_training(*, sizes: dict[str, int], dropout: float, lr: float, patience: int,
                   weight_decay: float = 0.0, penalty_alpha: float = 0.0) -> None:
    """The ranges every trained baseline shares: sizes and counts at least 1, ``dropout`` a
    probability in [0, 1), ``lr`` > 0, ``patience`` and ``weight_decay`` and the penalty's
    ``alpha`` at least 0."""
    for option, value in sizes.items():
        check_range(option, value, low=1)
    check_range("dropout", dropout, low=0, high=1, open_high=True)
    check_range("lr", lr, low=0, open_low=True)
    check_range("patience", patience, low=0)
    check_range("weight_decay", weight_decay, low=0)
    check_range("penalty_alpha", penalty_alpha, low=0)


def parse_items(items: list[str]) -> dict[str, Any]:
    """``["lr=0.01", "loss=kl"]`` -> ``{"lr": 0.01, "loss": "kl"}`` (JSON values, else strings).

    >>> parse_items(["lr=0.01", "loss=kl", "layers=[1, 2]"])
    {'lr': 0.01, 'loss': 'kl', 'layers': [1, 2]}
    """
    config: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--config {item!r} is not key=value",
                             fix="e.g. --config loss=kl --config max_epochs=5")
        try:
            config[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            config[key.strip()] = value
    return config


__all__ = ["Param", "check_range", "check_training", "declared", "defaults", "parse_items",
           "validate_config"]
