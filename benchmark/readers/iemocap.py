"""IEMOCAP reader (``IEMOCAP_full_release``, Busso et al. 2008).

Files read (``--source`` is the release folder holding ``Session1`` .. ``Session5``):

* ``Session<s>/dialog/EmoEvaluation/*.txt``: per dialogue, a block per turn::

      [6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]
      C-E2:	Neutral;	()
      C-F1:	Neutral; Frustration;	(curious)
      A-E3:	val 3; act 2; dom  2;	()

  The bracketed header gives the turn id and times (its summary label is not
  read: serbench derives consensus labels itself).  Every ``C-`` line is one
  evaluator's categorical answer, a multi-choice question, so each chosen
  emotion becomes a ``secondary`` vote of that evaluator.  External evaluators
  (``C-E1`` .. ``C-E6``) keep their code as rater id; self-evaluations by the
  actors (``C-F<n>`` / ``C-M<n>``) are separate raters ``Ses0<s>-F<n>`` (the
  actors differ per session), and ``self_evaluations: false`` leaves them out
  (a counted drop).  ``Other:<free text>`` is the label ``Other`` (the text is
  dropped; the task maps it to ``other``).  Dimensional ``A-`` lines are not
  categorical and are not read.
* ``Session<s>/sentences/wav/<dialogue>/<turn>.wav``: audio path and duration
  when present; turns without a wav are kept without audio and counted.

Speaker = session and the gender letter of the turn id's last part
(``Ses01F_impro01_M003`` -> ``Ses01_M``); session = the session digit.
A malformed line is an error naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..ratings import SECONDARY
from .base import ReadResult, locate_audio

_HEADER = re.compile(r"^\[(?P<start>[\d.]+) - (?P<end>[\d.]+)\]\s+(?P<utt>Ses\d{2}[FM]_\S+)\s")
_CATEGORICAL = re.compile(r"^C-(?P<rater>[A-Z]\d+):\s*(?P<labels>[^()]*?)\s*(\((?P<note>.*)\))?$")
_TURN = re.compile(r"^Ses(?P<session>\d{2})[FM]_.*_(?P<gender>[FM])\d+$")


def _sessions(root: Path) -> list[Path]:
    found = sorted(p for p in root.glob("Session*") if (p / "dialog" / "EmoEvaluation").is_dir())
    if not found:
        raise InputError("no Session*/dialog/EmoEvaluation folder found", file=root,
                         fix="point --source at IEMOCAP_full_release")
    return found


def parse_evaluation(path: Path, *, self_evaluations: bool = True) -> tuple[list[dict], int]:
    """Rating rows of one EmoEvaluation file, and the number of self-evaluation votes left out."""
    rows: list[dict] = []
    dropped = 0
    turn = None
    with path.open(encoding="utf-8", errors="strict") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\n").strip()
            if not line or line.startswith("%"):
                continue
            if line.startswith("["):
                m = _HEADER.match(line)
                if not m:
                    raise InputError("malformed turn header (want [start - end] TURN ...)",
                                     file=path, row=line_no, fix="use the unmodified release")
                turn = m["utt"]
                continue
            if not line.startswith("C-"):
                continue  # dimensional (A-) lines and anything else are not categorical
            m = _CATEGORICAL.match(line)
            if not m or turn is None:
                raise InputError("malformed categorical line (want C-<evaluator>: Label; ...)",
                                 file=path, row=line_no, fix="use the unmodified release")
            labels = [x.strip() for x in m["labels"].split(";") if x.strip()]
            if not labels:
                raise InputError("categorical line without a label", file=path, row=line_no,
                                 fix="use the unmodified release")
            code = m["rater"]
            is_self = code[0] in "FM"
            if is_self and not self_evaluations:
                dropped += len(labels)
                continue
            rater = f"{turn[:5]}-{code}" if is_self else code
            for label in dict.fromkeys(x.split(":")[0].strip() for x in labels):
                rows.append({"utterance_id": turn, "rater_id": rater, "label": label,
                             "question": SECONDARY, "source": str(path), "source_row": line_no})
    return rows, dropped


def read_iemocap(source: str | Path | None = None, *, self_evaluations: bool = True,
                 **_: object) -> ReadResult:
    if source is None:
        raise InputError("IEMOCAP needs --source (the IEMOCAP_full_release folder)")
    root = Path(source)
    rows: list[dict] = []
    files: list[str] = []
    dropped = 0
    for session in _sessions(root):
        for path in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            got, d = parse_evaluation(path, self_evaluations=self_evaluations)
            rows += got
            dropped += d
            files.append(str(path))
    if not rows:
        raise InputError("no categorical evaluations found", file=root,
                         fix="point --source at IEMOCAP_full_release")
    table = pd.DataFrame(rows)
    turns = table["utterance_id"].drop_duplicates()
    meta = {}
    no_wav = 0
    for utt in turns:
        m = _TURN.match(utt)
        if not m:
            raise InputError(f"turn id {utt!r} does not follow SesNN[FM]_..._[FM]NNN",
                             file=table.loc[table["utterance_id"] == utt, "source"].iloc[0])
        wav = root / f"Session{int(m['session'])}" / "sentences" / "wav" / \
            utt.rsplit("_", 1)[0] / f"{utt}.wav"
        audio_path, duration = locate_audio(wav)
        no_wav += audio_path is None
        meta[utt] = (f"Ses{m['session']}_{m['gender']}", str(int(m["session"])), audio_path,
                     duration)
    cols = pd.DataFrame.from_dict(meta, orient="index",
                                  columns=["speaker_id", "session", "audio_path", "duration"])
    table = table.join(cols, on="utterance_id")
    drops = {}
    if dropped:
        drops["self-evaluation votes left out (self_evaluations: false)"] = dropped
    if no_wav:
        drops["turns without sentences/wav file (kept without audio)"] = no_wav
    return ReadResult(table=table, drops=drops, files=files,
                      notes=[f"{len(turns)} turns, {table['rater_id'].nunique()} evaluators"])
