"""SpeechBrain-style JSON manifests (Ravanelli et al., 2021, "SpeechBrain: A General-Purpose
Speech Toolkit"; the data specification read by ``DynamicItemDataset.from_json``).

A manifest is one JSON object keyed by utterance id; each entry holds the
fields the recipe needs.  SpeechBrain's IEMOCAP emotion recipe writes::

    {"Ses01F_impro01_F000": {"wav": "{data_root}/Session1/ang/Ses01F_impro01_F000.wav",
                             "length": 1.96, "emo": "ang"}, ...}

``{data_root}`` (any ``{name}``) is a placeholder that SpeechBrain replaces at
load time (``replacements={"data_root": ...}``); here ``corpus.options.data_root``
gives it (default: the manifest's folder) and ``replacements`` any other.
Paths after replacement are confined to that folder.

``--source`` is a manifest file or a folder of them (``train.json``,
``valid.json``, ``test.json`` are read together; ``corpus.options.files``
names them explicitly).  The splits of a serbench task come from
``task.yaml``, so the recipe's split is not kept; an id in two files is an
error.  Options:

* ``label_key`` (default ``emo``), ``wav_key`` (``wav``), ``speaker_key``
  (``spk_id``, SpeechBrain's usual name) and ``speaker_pattern`` (a regular
  expression over the id, used when entries carry no speaker).
* ``allow_missing_audio`` / ``allow_absolute_audio``: as in the other readers.

One label per entry: one primary vote with a null rater id (counts-only).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..paths import confined
from .base import ReadResult
from .manifests import AudioFiles, speakers_from_ids, table

_PLACEHOLDER = re.compile(r"^\{(\w+)\}/?")


def _files(source: str | Path | None, files: list[str] | None) -> list[Path]:
    if source is None:
        raise InputError("this task reads SpeechBrain JSON manifests: pass --source FILE or "
                         "FOLDER")
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("manifest not found", file=path, fix="pass a .json manifest or a folder "
                                                              "of them")
    found = [confined(path, f, what="manifest", file="the task's corpus.options.files")
             for f in files] if files else sorted(path.glob("*.json"))
    if not found:
        raise InputError("no .json manifest in the folder", file=path,
                         fix="pass the folder holding train.json / valid.json / test.json")
    for f in found:
        if not f.is_file():
            raise InputError("manifest not found", file=f, fix="fix corpus.options.files")
    return found


def read_speechbrain(source: str | Path | None = None, *, files: list[str] | None = None,
                     data_root: str | None = None, replacements: dict[str, str] | None = None,
                     label_key: str = "emo", wav_key: str = "wav", speaker_key: str = "spk_id",
                     speaker_pattern: str | None = None, allow_missing_audio: bool = False,
                     allow_absolute_audio: bool = False, **_: object) -> ReadResult:
    manifests = _files(source, files)
    audio = AudioFiles(allow_missing_audio, allow_absolute_audio)
    cols: dict[str, list[Any]] = {k: [] for k in ("utterance_id", "label", "speaker_id",
                                                  "audio_path", "duration", "source_row",
                                                  "source")}
    first: dict[str, Path] = {}
    no_speaker: list[tuple[str, Path]] = []
    for path in manifests:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"not valid JSON: {exc}", file=path,
                             fix="a SpeechBrain manifest is one JSON object keyed by "
                                 "utterance id") from None
        if not isinstance(data, dict):
            raise InputError("a SpeechBrain manifest must be one JSON object keyed by "
                             "utterance id", file=path)
        roots = {"data_root": data_root or "."} | dict(replacements or {})
        for n, (utt, entry) in enumerate(data.items(), start=1):
            where = f"entry {utt!r}"
            if utt in first:
                raise InputError(f"utterance {utt!r} is also in {first[utt]}", file=path,
                                 row=where, fix="each utterance belongs in one manifest")
            first[utt] = path
            if not isinstance(entry, dict):
                raise InputError("an entry must be a JSON object of fields", file=path, row=where)
            for key in (label_key, wav_key):
                if entry.get(key) in (None, ""):
                    raise InputError(f"missing field {key!r}", file=path, row=where,
                                     fix=f"every entry needs {wav_key!r} and {label_key!r}, or "
                                         "set wav_key / label_key in the task's corpus options")
            label = entry[label_key]
            if not isinstance(label, (str, int)):
                raise InputError(f"{label_key} must be one label, got {label!r}", file=path,
                                 row=where, fix="one label per utterance")
            wav = str(entry[wav_key])
            m = _PLACEHOLDER.match(wav)
            if m:
                if m.group(1) not in roots:
                    raise InputError(f"unknown placeholder {{{m.group(1)}}} in {wav!r}",
                                     file=path, row=where,
                                     fix=f"give it under corpus.options.replacements: "
                                         f"{{{m.group(1)}: FOLDER}}")
                root, rel = path.parent / roots[m.group(1)], wav[m.end():]
            else:
                root, rel = path.parent, wav
            p, d = audio.resolve(root, rel, file=path, row=where)
            cols["utterance_id"].append(str(utt))
            cols["label"].append(str(label))
            spk = entry.get(speaker_key)
            if spk in (None, ""):
                no_speaker.append((str(utt), path))
            cols["speaker_id"].append(None if spk in (None, "") else str(spk))
            cols["audio_path"].append(p)
            cols["duration"].append(d)
            cols["source_row"].append(n)
            cols["source"].append(str(path))
    if not first:
        raise InputError("the manifests hold no utterance", file=manifests[0])
    if no_speaker:
        if speaker_pattern is None:
            utt, path = no_speaker[0]
            raise InputError(f"{len(no_speaker)} entries have no {speaker_key!r}, e.g. {utt!r}, "
                             "and the task sets no speaker_pattern", file=path,
                             fix="set corpus.options.speaker_pattern (a regular expression "
                                 "whose group is the speaker in the id), or speaker_key")
        idx = [i for i, s in enumerate(cols["speaker_id"]) if s is None]
        found = speakers_from_ids([cols["utterance_id"][i] for i in idx], speaker_pattern,
                                  file=manifests[0], rows=[cols["utterance_id"][i] for i in idx])
        for i, s in zip(idx, found, strict=True):
            cols["speaker_id"][i] = s
    df = table(cols, source=manifests[0])
    return ReadResult(table=df, drops=audio.drops(), files=[str(p) for p in manifests],
                      counts_only=True,
                      notes=["SpeechBrain manifests hold one label per utterance: one vote, "
                             "no rater id"])
