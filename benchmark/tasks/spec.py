"""Task definitions: the YAML file in ``tasks/<name>/task.yaml``, parsed and checked.

A task fixes everything that decides which clips are scored against which
targets: the corpus reader, the class list and raw-label mapping, the
question (primary / secondary), the "other" policy, the folds and the rules.
The file is parsed with ``yaml.safe_load`` (no object construction) and every
key is checked, so a typo is an error naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import metrics as _metrics
from .. import rater_metrics as _rater_metrics
from ..errors import InputError
from ..ratings import OTHER, QUESTIONS
from ..vocab import DEFAULT_RULES, MODEL_RULES, RULES

#: Metric names a task may list (implemented by the scorer: metrics.ALL).
METRICS = _metrics.ALL
GROUP_COLUMNS = ("speaker_id", "session")
_KEYS = {
    "name",
    "version",
    "description",
    "corpus",
    "classes",
    "label_map",
    "question",
    "other",
    "smoothing",
    "rules",
    "folds",
    "mr_exclusions",
    "metrics",
    "primary_metric",
    "source",
    "license",
    "frozen",
    "uar_classes",  # UAR class convention, not a target setting
    "aggregation",  # settings of the model rules (DS, DS1)
    "raters",  # rater-level evaluation options (docs/methods.md#rater-eval), not targets
}
#: Whose confusion matrices DS fits: one per rater (``raters``), one for all votes
#: (``pooled``), or per rater when every vote has a rater id (``auto``).
DS_WORKERS = ("auto", "raters", "pooled")
#: Keys of the task file's ``aggregation`` mapping and what each must be (declared once: the
#: parser checks against it and its messages list it).
AGGREGATION_KEYS = {"workers": "one of " + ", ".join(DS_WORKERS)}
#: Keys of the other mappings of a task file (what each holds), for the same check.
CORPUS_KEYS = {"reader": "a reader name", "options": "the reader's options"}
OTHER_KEYS = {"labels": "raw labels counted as other",
              "mr_denominator": "all_votes or in_set"}
FOLDS_KEYS = {"group_by": "one of " + ", ".join(GROUP_COLUMNS),
              "splits": "a list of {test, dev}"}
SPLIT_KEYS = {"test": "groups held out for test", "dev": "groups held out for dev"}
MR_EXCLUSION_KEYS = {"ids": "clip ids", "reason": "why they are excluded"}
#: Keys of the task file's ``raters`` mapping and what each must be.
RATER_KEYS = {"test_disjoint": "true or false", "min_votes": "a whole number >= 1"}


@dataclass(frozen=True)
class FoldSpec:
    """One fold: the groups (speakers or sessions) held out for test and dev."""

    test: tuple[str, ...]
    dev: tuple[str, ...]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int
    description: str
    reader: str
    reader_options: dict[str, Any]
    classes: tuple[str, ...]
    label_map: dict[str, str]
    question: str
    other_labels: tuple[str, ...]
    mr_denominator: str
    smoothing: float
    rules: tuple[str, ...]
    group_by: str
    folds: tuple[FoldSpec, ...]
    metrics: tuple[str, ...]
    primary_metric: str
    mr_exclusions: tuple[str, ...] = ()
    mr_exclusion_reason: str = ""
    source: str = ""
    license: str = ""
    #: False for a task defined without the corpus at hand: no manifest or
    #: fingerprint ships, each lab's build reports its own fingerprint to compare.
    frozen: bool = True
    path: Path | None = field(default=None, compare=False)
    #: UAR averages recall over the classes ``present`` in each test set or over ``all``
    #: classes. A scoring convention, not a target setting: it is not in the fingerprint.
    uar_classes: str = "present"
    #: DS / DS1 workers: ``auto``, ``raters`` or ``pooled`` (:data:`DS_WORKERS`).
    ds_workers: str = "auto"
    #: Rater-level metrics count only the votes of test raters who rated none of the
    #: fold's training or development clips (``raters: {test_disjoint: true}``).
    #: A scoring convention (docs/methods.md#rater-eval): not in the fingerprint.
    rater_test_disjoint: bool = False
    #: Per-rater UAR covers the raters with at least this many counted test votes.
    rater_min_votes: int = _rater_metrics.MIN_VOTES

    @property
    def k(self) -> int:
        return len(self.classes)

    def target_config(self) -> dict[str, Any]:
        """Every setting that changes which clips are kept or their targets."""
        return {
            "classes": list(self.classes),
            "label_map": dict(sorted(self.label_map.items())),
            "question": self.question,
            "other_labels": sorted(self.other_labels),
            "mr_denominator": self.mr_denominator,
            "smoothing": self.smoothing,
            "rules": list(self.rules),
            "group_by": self.group_by,
            "folds": [{"test": list(f.test), "dev": list(f.dev)} for f in self.folds],
            "mr_exclusions": sorted(self.mr_exclusions),
            # only with a model rule, so the hashes of tasks without one stay as frozen
            **({"aggregation": {**_aggregation_settings(), "workers": self.ds_workers}}
               if set(self.rules) & set(MODEL_RULES) else {}),
        }

    def config_hash(self) -> str:
        blob = json.dumps(self.target_config(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _aggregation_settings() -> dict[str, Any]:
    from ..aggregation import settings

    return settings()


def _rules(value: Any, file: Path) -> tuple[str, ...]:
    """The task's rules: known names, no repeats, at least one (default MR, PR, AR)."""
    known = ", ".join(RULES)
    if not isinstance(value, list) or not value:
        raise InputError(f"rules must be a non-empty list of rule names, got {value!r}",
                         file=file, fix=f"e.g. rules: [{', '.join(DEFAULT_RULES)}]; known: "
                                        f"{known}")
    rules = tuple(str(v) for v in value)
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        import difflib

        hints = [f"{r!r} (did you mean {close[0]!r}?)" if close else repr(r)
                 for r in unknown
                 for close in [difflib.get_close_matches(r.upper(), RULES, n=1)]]
        raise InputError(f"rules must be names serbench knows; unknown rule(s): "
                         f"{', '.join(hints)}", file=file,
                         fix=f"use rule names from {known} (upper case)")
    twice = sorted({r for r in rules if rules.count(r) > 1})
    if twice:
        raise InputError(f"rules must each be listed once; repeated: {twice}", file=file,
                         fix=f"list each rule once: rules: {list(dict.fromkeys(rules))}")
    return rules


def _need(d: dict, key: str, kind: type | tuple[type, ...], file: Path, where: str = "") -> Any:
    if key not in d:
        raise InputError(
            f"missing key {where}{key!r}", file=file, fix=f"add {where}{key} to the task file"
        )
    value = d[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InputError(f"{where}{key} must be a {names}, got {type(value).__name__}", file=file,
                         fix=f"write {where}{key} as a {names} (see the task files under tasks/)")
    return value


def _strs(values: Any, key: str, file: Path) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise InputError(f"{key} must be a list", file=file, fix=f"write {key}: [a, b, ...]")
    return tuple(str(v) for v in values)


def parse_task(data: Any, file: Path) -> TaskSpec:
    """Validate a parsed task YAML document."""
    if not isinstance(data, dict):
        raise InputError("the task file is empty" if data is None else
                         f"a task file must be a mapping of keys, not a {type(data).__name__}",
                         file=file, fix="start from tasks/demo/task.yaml (name:, corpus:, "
                                        "classes:, label_map:, folds:)")
    unknown = set(data) - _KEYS
    if unknown:
        raise InputError(
            f"unknown key(s) {sorted(unknown)}", file=file, fix=f"allowed keys: {sorted(_KEYS)}"
        )
    name = str(_need(data, "name", str, file))
    if not name.strip():
        raise InputError("name is empty", file=file, fix="name: the task's folder name")
    corpus = _mapping(_need(data, "corpus", dict, file), "corpus", CORPUS_KEYS, file,
                      "{reader: demo}")
    reader = str(_need(corpus, "reader", str, file, "corpus."))
    from ..readers import available

    if reader not in available():
        import difflib

        close = difflib.get_close_matches(reader, list(available()), n=1)
        raise InputError(f"corpus.reader {reader!r} is not a known reader"
                         + (f" (did you mean {close[0]!r}?)" if close else "")
                         + f"; known: {', '.join(sorted(available()))}", file=file,
                         fix="spell the reader as `serbench tasks list` shows it, or install "
                             "the package that provides it")
    options = corpus.get("options") or {}
    if not isinstance(options, dict):
        raise InputError("corpus.options must be a mapping", file=file,
                         fix="write corpus.options as key: value lines, or leave it out")
    classes = _strs(_need(data, "classes", list, file), "classes", file)
    if len(classes) < 2 or len(set(classes)) != len(classes) or OTHER in classes:
        raise InputError(f"classes must be >= 2 distinct names other than {OTHER!r}", file=file,
                         fix="e.g. classes: [angry, happy, neutral, sad]")
    label_map = {str(k): str(v) for k, v in _need(data, "label_map", dict, file).items()}
    bad = sorted(set(label_map.values()) - set(classes))
    if bad:
        raise InputError(
            f"label_map targets {bad} are not classes",
            file=file,
            fix=f"map raw labels onto {list(classes)}, or list them under other.labels",
        )
    question = str(data.get("question", "primary"))
    if question not in QUESTIONS:
        raise InputError(f"question must be one of {QUESTIONS}", file=file,
                         fix=f"question: {QUESTIONS[0]}")
    other = _mapping(data.get("other"), "other", OTHER_KEYS, file,
                     "{labels: [X], mr_denominator: all_votes}")
    other_labels = _strs(other.get("labels", []), "other.labels", file)
    clash = sorted(set(other_labels) & set(label_map))
    if clash:
        raise InputError(f"labels {clash} are both mapped and listed as other", file=file)
    mr_denominator = str(other.get("mr_denominator", "all_votes"))
    if mr_denominator not in ("all_votes", "in_set"):
        raise InputError("other.mr_denominator must be 'all_votes' or 'in_set'", file=file,
                         fix="other: {mr_denominator: all_votes}")
    smoothing = _number(data.get("smoothing", 0.05), "smoothing", float, file)
    if not 0.0 <= smoothing < 1.0:
        raise InputError(f"smoothing must be in [0, 1), got {smoothing:g}", file=file,
                         fix="e.g. smoothing: 0.05 (0 for none)")
    rules = _rules(data.get("rules", list(DEFAULT_RULES)), file)
    folds_d = _mapping(_need(data, "folds", dict, file), "folds", FOLDS_KEYS, file,
                       "{group_by: speaker_id, splits: [{test: [s1], dev: [s2]}]}")
    group_by = str(folds_d.get("group_by", "speaker_id"))
    if group_by not in GROUP_COLUMNS:
        raise InputError(f"folds.group_by must be one of {GROUP_COLUMNS}", file=file,
                         fix=f"folds: {{group_by: {GROUP_COLUMNS[0]}, ...}}")
    folds = []
    for i, f in enumerate(_need(folds_d, "splits", list, file, "folds.")):
        if not isinstance(f, dict) or "test" not in f or "dev" not in f:
            raise InputError(f"folds.splits[{i}] needs 'test' and 'dev' group lists", file=file)
        _mapping(f, f"folds.splits[{i}]", SPLIT_KEYS, file, "{test: [s1], dev: [s2]}")
        test, dev = _strs(f["test"], "test", file), _strs(f["dev"], "dev", file)
        if set(test) & set(dev) or not test:
            raise InputError(
                f"folds.splits[{i}]: test must be non-empty and disjoint from dev", file=file
            )
        folds.append(FoldSpec(test, dev))
    if not folds:
        raise InputError("folds.splits is empty", file=file,
                         fix="list one {test: [...], dev: [...]} per fold")
    metrics = _strs(data.get("metrics", list(_metrics.DEFAULT)), "metrics", file)
    if not metrics:
        raise InputError("metrics is empty", file=file,
                         fix="list one or more metrics, or leave metrics out for the default")
    metrics = tuple(_metrics.RENAMED.get(m, m) for m in metrics)  # "ece" is now "ece_bits"
    unknown_m = sorted(set(metrics) - set(METRICS))
    if unknown_m:
        raise InputError(f"unknown metrics {unknown_m}", file=file, fix=f"known: {list(METRICS)}")
    primary = str(data.get("primary_metric", metrics[0]))
    primary = _metrics.RENAMED.get(primary, primary)
    uar_classes = str(data.get("uar_classes", "present"))
    if uar_classes not in _metrics.UAR_CLASSES:
        raise InputError(f"uar_classes must be one of {_metrics.UAR_CLASSES}, not "
                         f"{uar_classes!r}", file=file)
    if primary not in metrics:
        raise InputError(f"primary_metric {primary!r} is not among metrics", file=file,
                         fix="add it to metrics, or name one of them")
    excl = _mapping(data.get("mr_exclusions"), "mr_exclusions", MR_EXCLUSION_KEYS, file,
                    "{ids: [clip1, clip2], reason: why}")
    aggregation = _mapping(data.get("aggregation"), "aggregation", AGGREGATION_KEYS, file,
                           "{workers: pooled}")
    ds_workers = str(aggregation.get("workers", "auto"))
    if ds_workers not in DS_WORKERS:
        raise InputError(f"aggregation.workers must be one of {DS_WORKERS}, not {ds_workers!r}",
                         file=file, fix="pooled: one confusion matrix for every vote; raters: "
                                        "one per rater (needs rater ids); auto: raters when "
                                        "every vote has an id")
    if aggregation and not set(rules) & set(MODEL_RULES):
        raise InputError(f"aggregation sets the workers of the model rules "
                         f"({', '.join(MODEL_RULES)}), and rules {list(rules)} has none of them",
                         file=file, fix=f"add one to rules (e.g. rules: [{', '.join(rules)}, "
                                        f"{MODEL_RULES[0]}]) or remove aggregation")
    return TaskSpec(
        name=name,
        version=_number(data.get("version", 1), "version", int, file),
        description=str(data.get("description", "")).strip(),
        reader=reader,
        reader_options=dict(options),
        classes=classes,
        label_map=label_map,
        question=question,
        other_labels=other_labels,
        mr_denominator=mr_denominator,
        smoothing=smoothing,
        rules=rules,
        group_by=group_by,
        folds=tuple(folds),
        metrics=metrics,
        primary_metric=primary,
        mr_exclusions=_strs(excl.get("ids", []), "mr_exclusions.ids", file),
        mr_exclusion_reason=str(excl.get("reason", "")).strip(),
        source=str(data.get("source", "")).strip(),
        license=str(data.get("license", "")).strip(),
        frozen=_frozen(data.get("frozen", True), file),
        path=file,
        uar_classes=uar_classes,
        ds_workers=ds_workers,
        **_raters(data.get("raters"), file),
    )


def _mapping(value: Any, where: str, allowed: dict[str, str], file: Path,
             example: str) -> dict[str, Any]:
    """``value`` as the mapping ``where`` of a task file, every key one of ``allowed``.

    A misspelt key (``wrokers``, ``optons``) is refused with the file, the key and the
    allowed keys, rather than silently ignored (its setting would not apply).
    """
    fix = f"e.g. {where}: {example}; allowed keys under {where}: " + ", ".join(
        f"{k} ({v})" for k, v in allowed.items())
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a mapping, not {value!r}", file=file, fix=fix)
    unknown = sorted(set(map(str, value)) - set(allowed))
    if unknown:
        import difflib

        close = [c for u in unknown for c in difflib.get_close_matches(u, list(allowed), n=1)]
        raise InputError(f"unknown key(s) under {where}: {', '.join(map(repr, unknown))}"
                         + (f" (did you mean {close[0]!r}?)" if close else ""),
                         file=file, fix=fix)
    return value


def _raters(value: Any, file: Path) -> dict[str, Any]:
    """The ``raters`` mapping: ``test_disjoint`` (bool) and ``min_votes`` (int >= 1)."""
    if value is None:
        return {}
    fix = "e.g. raters: {test_disjoint: true, min_votes: 10}; keys: " + ", ".join(
        f"{k} ({v})" for k, v in RATER_KEYS.items())
    if not isinstance(value, dict):
        raise InputError(f"raters must be a mapping, not {value!r}", file=file, fix=fix)
    unknown = sorted(set(map(str, value)) - set(RATER_KEYS))
    if unknown:
        raise InputError(f"unknown key(s) raters.{', raters.'.join(unknown)}", file=file, fix=fix)
    out: dict[str, Any] = {}
    if "test_disjoint" in value:
        disjoint = value["test_disjoint"]
        if not isinstance(disjoint, bool):
            raise InputError(f"raters.test_disjoint must be true or false, not {disjoint!r}",
                             file=file, fix=fix)
        out["rater_test_disjoint"] = disjoint
    if "min_votes" in value:
        n = value["min_votes"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"raters.min_votes must be a whole number >= 1, not {n!r}",
                             file=file, fix=fix)
        out["rater_min_votes"] = n
    return out


def _frozen(value: Any, file: Path) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"frozen must be true or false, not {value!r}", file=file,
                         fix="serbench tasks freeze sets it")
    return value


def _number(value: Any, key: str, kind: type, file: Path) -> Any:
    """``value`` as an int or float; anything else (a string, a list, 2.7 for an int) is one
    message naming the key."""
    ok = (isinstance(value, int) and not isinstance(value, bool)) if kind is int else \
        (isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok:
        raise InputError(f"{key} must be {'an integer' if kind is int else 'a number'}, not "
                         f"{value!r}", file=file)
    return kind(value)


def load_spec(file: str | Path) -> TaskSpec:
    file = Path(file)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("task file not found", file=file) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start}): is this a task.yaml?", file=file,
                         fix="save the task file as UTF-8 YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"not valid YAML{where}: {problem}", file=file,
                         row=None if mark is None else mark.line + 1,
                         fix="fix the YAML syntax (indentation, colons, quotes)") from None
    return parse_task(data, file)
