"""EmoBox-style JSON-lines manifests (Ma et al., 2024, "EmoBox: Multilingual Multi-corpus
Speech Emotion Recognition Toolkit and Benchmark").

EmoBox ships, per corpus, ``data/<corpus>/<corpus>.jsonl`` (every clip) and
fold files ``fold_<n>/<corpus>_{train,test}_fold_<n>.jsonl``.  Each line is
one clip::

    {"key": "cafe-08-P-2-1", "dataset": "cafe",
     "wav": "downloads/cafe/CaFE_48k/Peur/Fort/08-P-2-1.wav", "type": "raw",
     "sample_rate": 48000, "num_frame": 168833.0, "task": "category",
     "length": 3.517, "emo": "p", "channel": 1}

``--source`` is that file, or a folder holding exactly one ``*.jsonl`` (or
the one named by ``corpus.options.file``).  Read the corpus file, not a fold
file: the folds of a serbench task come from ``task.yaml``, and a clip listed
twice is an error.  Options (``corpus.options``):

* ``data_dir``: the folder the ``wav`` paths are relative to (EmoBox's
  ``data_dir``); default the manifest's folder.  Paths are confined to it.
* ``speaker_pattern``: a regular expression whose first group (or group
  ``speaker``) is the speaker in ``key``, e.g. ``'^cafe-(\\d+)-'``; EmoBox
  lines carry no speaker.  A ``speaker`` field, when present, wins.
* ``allow_missing_audio`` / ``allow_absolute_audio``: as in the other readers.

Labels: one label per clip (``emo``, EmoBox's short code; the task's
``label_map`` maps it), so one primary vote with a null rater id
(counts-only).  Lines with ``task`` other than ``category``, ``type`` other
than ``raw`` (precomputed features), or ``start_time`` / ``end_time``
(segments of a longer file) are refused: serbench scores whole audio files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..paths import confined
from .base import ReadResult
from .manifests import AudioFiles, speakers_from_ids, table

REQUIRED = ("key", "wav", "emo")


def manifest_file(source: str | Path | None, file: str | None, *, suffix: str,
                  what: str) -> Path:
    """The manifest: ``source`` itself, or the one ``suffix`` file in the folder ``source``."""
    if source is None:
        raise InputError(f"this task reads {what}: pass --source FILE or FOLDER")
    path = Path(source)
    if path.is_dir():
        if file is not None:
            path = confined(path, file, what="manifest", file="the task's corpus.options.file")
        else:
            found = sorted(path.glob(f"*{suffix}"))
            if len(found) != 1:
                raise InputError(f"expected one {suffix} file in the folder, found {len(found)}",
                                 file=path, fix="pass the manifest file itself, or set "
                                                "corpus.options.file in the task")
            path = found[0]
    if not path.is_file():
        raise InputError(f"{what} not found", file=path, fix=f"pass the {suffix} manifest")
    return path


def read_emobox(source: str | Path | None = None, *, file: str | None = None,
                data_dir: str | None = None, speaker_pattern: str | None = None,
                allow_missing_audio: bool = False, allow_absolute_audio: bool = False,
                **_: object) -> ReadResult:
    path = manifest_file(source, file, suffix=".jsonl", what="an EmoBox JSON-lines manifest")
    root = path.parent if data_dir is None else (path.parent / data_dir)
    entries: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON: {exc.msg}", file=path, row=line_no,
                                 fix="one JSON object per line") from None
            if not isinstance(obj, dict):
                raise InputError("a line must be a JSON object", file=path, row=line_no)
            missing = [k for k in REQUIRED if obj.get(k) in (None, "")]
            if missing:
                raise InputError(f"missing field(s) {missing}", file=path, row=line_no,
                                 fix="EmoBox lines need key, wav and emo")
            for key, allowed in (("task", "category"), ("type", "raw")):
                if key in obj and obj[key] != allowed:
                    raise InputError(f"{key} {obj[key]!r} is not supported (only {allowed!r})",
                                     file=path, row=line_no,
                                     fix="keep the categorical lines of raw audio only")
            if "start_time" in obj or "end_time" in obj:
                raise InputError("segments (start_time / end_time) are not supported", file=path,
                                 row=line_no, fix="cut each segment into its own audio file")
            key = str(obj["key"])
            if key in seen:
                raise InputError(f"clip {key!r} is listed twice (first on line {seen[key]})",
                                 file=path, row=line_no,
                                 fix="read the corpus manifest <corpus>.jsonl, not fold files")
            seen[key] = line_no
            entries.append((line_no, obj))
    if not entries:
        raise InputError("the manifest has no clips", file=path)
    ids = [str(o["key"]) for _, o in entries]
    rows: list[int | str] = [n for n, _ in entries]
    if all("speaker" in o for _, o in entries):
        speakers = [str(o["speaker"]) for _, o in entries]
    elif speaker_pattern is not None:
        speakers = speakers_from_ids(ids, speaker_pattern, file=path, rows=rows)
    else:
        raise InputError("EmoBox lines carry no speaker, and the task sets no speaker_pattern",
                         file=path, fix="set corpus.options.speaker_pattern to a regular "
                                        "expression whose group is the speaker in the key, "
                                        "e.g. '^cafe-(\\d+)-'")
    audio = AudioFiles(allow_missing_audio, allow_absolute_audio)
    found = [audio.resolve(root, str(o["wav"]), file=path, row=n) for n, o in entries]
    df = table({"utterance_id": ids, "label": [str(o["emo"]) for _, o in entries],
                "speaker_id": speakers, "audio_path": [p for p, _ in found],
                "duration": [d for _, d in found], "source_row": rows}, source=path)
    return ReadResult(table=df, drops=audio.drops(), files=[str(path)], counts_only=True,
                      notes=["EmoBox manifests hold one label per clip: one vote, no rater id"])
