"""A task as a Hugging Face ``datasets.DatasetDict``, so that any training loop can use it.

``export_task(task, to=DIR)`` writes, with ``DatasetDict.save_to_disk``, one
split per fold and part (``fold1_train``, ``fold1_dev``, ``fold1_test``, ...).
Every split holds the clips of that part of that fold (all of them, whatever a
rule keeps) with one row per clip:

====================  ======================================================
``utterance_id``      clip id
``audio_path``        absolute audio path (null when the task has no audio)
``duration``          seconds (null when unknown)
``speaker_id``        speaker; ``session`` the recording session (or null)
``fold``, ``split``   the fold (1-based) and ``train`` / ``dev`` / ``test``
``in_mr`` ...         ``in_mr``, ``in_pr``, ``in_ar``: kept by each rule
``label``             ``ClassLabel``: the unique top class, -1 when tied or
                      without in-set votes (the MR / PR consensus label)
``votes``             in-set vote counts per class; ``votes_other`` the
                      out-of-set votes
``distribution``      the vote distribution (the AR target; null without an
                      in-set vote)
``smoothed``          ``distribution`` label-smoothed with the task's epsilon
``smoothed_onehot``   the one-hot of ``label`` smoothed (the MR / PR target;
                      null when ``label`` is -1)
``multi_hot``         bits ``distribution > 1/K`` (null without a vote)
``ratings``           every rating of the clip: ``rater_id`` (null when the
                      source has counts only), ``label`` (as the source
                      spells it), ``mapped_class``, ``question``
``ds_posterior``      only for a task with DS (``ds1_posterior``: DS1): the
                      Dawid-Skene posterior, the DS target (its argmax is
                      the DS label); ``in_ds`` / ``in_ds1`` as ``in_ar``
====================  ======================================================

Targets and membership are the task's own (:class:`serbench.tasks.Task`),
so a loop that trains on ``fold1_train`` rows with ``in_mr`` on ``label``
trains on exactly the clips and targets ``serbench run`` would give it.  The
task name, version, fingerprint, classes and smoothing are in every split's
``DatasetInfo`` (``description`` ends with a ``serbench: {json}`` line, read
back by :func:`export_metadata`; ``version`` is the task version).

``audio=True`` adds an ``Audio`` column cast from the path; ``save_to_disk``
then embeds the audio bytes, which makes the export portable and larger.
Decoding that column needs ``datasets``' own decoder (torchcodec); the path
column is always there for loops that read files themselves.

The export is written into a temporary folder beside ``to`` and renamed into
place, so an interrupted export never leaves half a dataset; an existing
folder is replaced only with ``overwrite=True`` and only if it is a serbench
export itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from . import __version__
from .errors import FingerprintMismatch, InputError
from .rules import unique_top
from .targets import label_smooth, multi_hot
from .tasks import manifest as mf
from .tasks.task import Task
from .vocab import MODEL_RULES

MARKER = "serbench: "
FORMAT = 1


def split_name(fold: int, split: str) -> str:
    """Name of one (fold, split) in the DatasetDict, e.g. ``fold1_train``."""
    return f"fold{fold}_{split}"


def _list_column(values: np.ndarray, valid: np.ndarray, kind: pa.DataType) -> pa.Array:
    """A fixed-size list column from an [N, K] array, null where ``valid`` is False."""
    k = values.shape[1]
    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=kind)
    arr = pa.FixedSizeListArray.from_arrays(flat, k)
    if valid.all():
        return arr
    return pa.FixedSizeListArray.from_arrays(flat, k, mask=pa.array(~valid))


def _ratings_column(task: Task, ids: np.ndarray) -> pa.Array:
    """Per clip (in ``ids`` order), the list of its ratings (vectorised via list offsets)."""
    r = task.ratings
    rid = r["utterance_id"].astype(str).to_numpy()
    pos = np.searchsorted(ids, rid)
    order = np.argsort(pos, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(pos, minlength=len(ids)))])

    def col(name: str) -> pa.Array:
        values = r[name].astype(object)
        return pa.array(values.where(values.notna(), None).to_numpy()[order], type=pa.string())

    struct = pa.StructArray.from_arrays(
        [col("rater_id"), col("label"), col("mapped_class"), col("question")],
        names=["rater_id", "label", "mapped_class", "question"])
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), struct)


def clip_table(task: Task) -> pa.Table:
    """One row per clip of the task (sorted ids) with every exported column but fold/split."""
    spec, counts = task.spec, task.counts
    ids = counts.ids.astype(str)
    n, k = counts.counts.shape
    meta = task.meta
    has_vote = counts.counts.sum(axis=1) > 0
    top_ok, top = unique_top(counts.counts)
    label = np.where(top_ok, top, -1).astype(np.int64)
    dist = np.zeros((n, k))
    if "AR" in spec.rules:
        ar = task.rule("AR")
        dist[ar.keep] = ar.targets
    else:  # the AR target is the vote share whether or not the task scores AR
        from .rules import distribution

        dist = distribution(counts.counts)
    onehot = np.zeros((n, k))
    onehot[np.flatnonzero(top_ok), top[top_ok]] = 1.0
    columns: dict[str, pa.Array] = {
        "utterance_id": pa.array(ids, type=pa.string()),
        "audio_path": pa.array([p if isinstance(p, str) and p else None
                                for p in meta["audio_path"].astype(object)], type=pa.string()),
        "duration": pa.array(meta["duration"].to_numpy(dtype=np.float64, na_value=np.nan),
                             type=pa.float64(), from_pandas=True),
        "speaker_id": pa.array(meta["speaker_id"].astype(str).to_numpy(), type=pa.string()),
        "session": pa.array([s if isinstance(s, str) else None
                             for s in meta["session"].astype(object)], type=pa.string()),
    }
    for rule in spec.rules:
        columns[f"in_{rule.lower()}"] = pa.array(task.rule(rule).keep, type=pa.bool_())
    columns |= {
        "label": pa.array(label, type=pa.int64()),
        "votes": _list_column(counts.counts.astype(np.int32), np.ones(n, bool), pa.int32()),
        "votes_other": pa.array(counts.other.astype(np.int32), type=pa.int32()),
        "distribution": _list_column(dist, has_vote, pa.float64()),
        "smoothed": _list_column(label_smooth(dist, spec.smoothing), has_vote, pa.float64()),
        "smoothed_onehot": _list_column(label_smooth(onehot, spec.smoothing), top_ok,
                                        pa.float64()),
        "multi_hot": _list_column(multi_hot(dist), has_vote, pa.int8()),
        "n_ratings": pa.array(meta["n_ratings"].to_numpy(dtype=np.int32), type=pa.int32()),
        "ratings": _ratings_column(task, ids),
    }
    for rule in spec.rules:  # the model rules' targets: the Dawid-Skene posterior
        if rule in MODEL_RULES:
            res = task.rule(rule)
            post = np.zeros((n, k))
            post[res.keep] = res.targets
            columns[f"{rule.lower()}_posterior"] = _list_column(post, res.keep, pa.float64())
    return pa.table(columns)


def metadata(task: Task) -> dict[str, Any]:
    """What an export records about its task (also the ``serbench:`` line of the info)."""
    spec = task.spec
    return {"format": FORMAT, "task": spec.name, "version": spec.version,
            "fingerprint": task.fingerprint["fingerprint"], "classes": list(spec.classes),
            "smoothing": spec.smoothing, "question": spec.question, "group_by": spec.group_by,
            "rules": list(spec.rules), "folds": task.n_folds, "serbench": __version__}


def _info(task: Task, features: Any) -> Any:
    import datasets

    meta = metadata(task)
    text = (f"serbench task {meta['task']} v{meta['version']} (fingerprint "
            f"{meta['fingerprint'][:12]}): {task.spec.description}\n"
            "One row per clip of one fold's train/dev/test part; in_mr/in_pr/in_ar say which "
            "rules keep it. Exported with serbench export.\n\n"
            f"{MARKER}{json.dumps(meta, sort_keys=True)}")
    return datasets.DatasetInfo(description=text, features=features, license=task.spec.license,
                                version=f"{task.spec.version}.0.0",
                                dataset_name=f"serbench-{task.spec.name}",
                                config_name=task.spec.name)


def build(task: Task, *, audio: bool = False) -> Any:
    """The task as an in-memory ``datasets.DatasetDict`` (see the module docstring)."""
    import datasets

    table = clip_table(task)
    features = datasets.Features.from_arrow_schema(table.schema)
    features["label"] = datasets.ClassLabel(names=list(task.spec.classes))
    features = datasets.Features({**features, "fold": datasets.Value("int32"),
                                  "split": datasets.Value("string")})
    pos = {u: i for i, u in enumerate(table.column("utterance_id").to_pylist())}
    manifest = task.manifest
    rows = np.array([pos[u] for u in manifest["utterance_id"].astype(str)], dtype=np.int64)
    out = {}
    for fold in range(1, task.n_folds + 1):
        assigned = manifest[f"fold_{fold}"].to_numpy()
        for split in mf.SPLITS:
            take = rows[assigned == split]
            part = table.take(pa.array(np.sort(take)))
            part = part.append_column("fold", pa.array(np.full(len(part), fold, np.int32)))
            part = part.append_column("split", pa.array([split] * len(part), pa.string()))
            ds = datasets.Dataset(part, info=_info(task, features.copy()),
                                  split=datasets.NamedSplit(split_name(fold, split)))
            if audio:
                ds = ds.add_column("audio", part.column("audio_path").to_pylist())
                ds = ds.cast_column("audio", datasets.Audio())
            out[split_name(fold, split)] = ds
    return datasets.DatasetDict(out)


def export_metadata(source: Any) -> dict[str, Any]:
    """The ``serbench`` metadata of an export: a folder, a DatasetDict or a Dataset.

    Raises :class:`InputError` when it is not a serbench export.
    """
    if isinstance(source, (str, Path)):
        folder = Path(source)
        texts = []
        for path in sorted(folder.glob("*/dataset_info.json")) or [folder / "dataset_info.json"]:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                texts.append(json.loads(path.read_text(encoding="utf-8")).get("description"))
        where: Path | None = folder
    else:
        parts = list(source.values()) if hasattr(source, "values") else [source]
        texts = [ds.info.description for ds in parts]
        where = None
    metas = [_parse(t, where) for t in texts] or [_parse(None, where)]
    if any(m != metas[0] for m in metas):
        raise InputError("the splits of this export carry different serbench metadata (parts of "
                         "two exports?)", file=where, fix="export the task again")
    return metas[0]


def _parse(text: str | None, where: Path | None) -> dict[str, Any]:
    if not text or MARKER not in text:
        raise InputError("not a serbench export (no 'serbench:' line in the dataset info)",
                         file=where, fix="export the task with: serbench export TASK --to DIR")
    try:
        return dict(json.loads(text.rsplit(MARKER, 1)[1].strip().splitlines()[0]))
    except (ValueError, IndexError) as exc:
        raise InputError(f"the export's serbench metadata is unreadable: {exc}", file=where,
                         fix="export the task again") from None


def check_export(meta: dict[str, Any], task: Task, *, where: str | Path | None = None) -> None:
    """Refuse an export made from another task, or from other clips or targets of this one."""
    fp = task.fingerprint["fingerprint"]
    if meta.get("task") != task.spec.name:
        raise InputError(f"the export is of task {meta.get('task')!r}, not {task.spec.name!r}",
                         file=where, fix=f"export {task.spec.name}: serbench export "
                                         f"{task.spec.name} --to DIR")
    if meta.get("fingerprint") != fp:
        raise FingerprintMismatch(
            f"the export was made on task fingerprint {str(meta.get('fingerprint'))[:12]}, the "
            f"prepared task {task.spec.name} is {fp[:12]}: its clips or targets differ",
            file=where, fix=f"export again (serbench export {task.spec.name} --to DIR "
                            "--overwrite), or prepare the task from the source the export "
                            "was made from")


def load_export(path: str | Path, task: Task | None = None) -> Any:
    """``datasets.load_from_disk(path)``, checked against ``task`` when one is given."""
    import datasets

    path = Path(path)
    if not (path / "dataset_dict.json").is_file():
        raise InputError("no exported DatasetDict here (dataset_dict.json missing)", file=path,
                         fix="export the task with: serbench export TASK --to DIR")
    meta = export_metadata(path)
    if task is not None:
        check_export(meta, task, where=path)
    return datasets.load_from_disk(str(path))


def _is_export(path: Path) -> bool:
    try:
        export_metadata(path)
    except InputError:
        return False
    return (path / "dataset_dict.json").is_file()


def check_target(to: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse an export folder that exists (unless ``overwrite`` and it is a serbench export)."""
    to = Path(to)
    if to.exists() or to.is_symlink():
        if not to.is_dir():
            raise InputError("--to is an existing file, not a folder", file=to,
                             fix="pass a new folder for the export; the file was left as it is")
        if not overwrite:
            raise InputError("the export folder already exists", file=to,
                             fix="choose a new folder, or pass --overwrite to replace a "
                                 "previous export")
        if not to.is_dir() or to.is_symlink() or not _is_export(to):
            raise InputError("refusing to overwrite: this is not a previous serbench export",
                             file=to, fix="choose a new folder")
    return to


def export_task(task: Task, to: str | Path, *, audio: bool = False,
                overwrite: bool = False) -> Path:
    """Write ``task`` as a DatasetDict at ``to`` (atomically); return the folder.

    ``to`` must not exist, unless ``overwrite`` is set and it holds a previous
    serbench export (a folder of anything else is never deleted).
    """
    to = check_target(to, overwrite=overwrite)
    if audio and not task.meta["audio_path"].notna().any():
        raise InputError(f"task {task.spec.name} has no audio to put in an Audio column",
                         fix="prepare the task with its audio, or export without --audio")
    import datasets

    dd = build(task, audio=audio)
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{to.name}.", suffix=".tmp", dir=to.parent))
    old = None
    quiet = not datasets.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        dd.save_to_disk(str(tmp / "data"))
        if to.exists():
            old = to.with_name(f".{to.name}.old-{os.getpid()}")
            os.replace(to, old)
        os.replace(tmp / "data", to)
    except BaseException:
        if old is not None and not to.exists():
            os.replace(old, to)
            old = None
        raise
    finally:
        if not quiet:
            datasets.enable_progress_bars()
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return to
