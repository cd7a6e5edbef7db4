"""EmoDB reader (Berlin Database of Emotional Speech, Burkhardt et al. 2005).

Files read (``--source`` is the corpus folder):

* ``wav/*.wav`` (or ``*.wav`` at the top level): one acted utterance per file,
  named ``SSTTTEV.wav``: speaker ``SS`` (03, 08-16), text ``TTT`` (a01-b10),
  emotion letter ``E``, version ``V``.  The emotion letters are German:
  W Ärger (anger), L Langeweile (boredom), E Ekel (disgust), A Angst (fear),
  F Freude (happiness), T Trauer (sadness), N neutral; the task's label map
  turns them into classes.
* ``erkennung.txt`` when present (Latin-1, tab separated; columns Nr, Satz,
  erkannt, natuerlich): the recognition rate and naturalness (percent) of
  each clip in the corpus's perception test with 20 listeners.  Kept as
  metadata: the table lists all 816 clips of the perception test, of which
  the released ones were selected (recognised by >= 80% of listeners, judged
  natural by >= 60%); the reader checks that every clip with audio is listed
  and reports the released clips' recognition rates in its notes.  The
  listeners' individual answers were not released, so they cannot become
  ratings.

Labels: EmoDB has one intended (acted) emotion per clip and no per-rater
labels, so each clip gets one primary vote with a null rater id (a
counts-only source: rater-aware models refuse it).  Under these labels
MR = PR = AR.  Speaker = the two-digit speaker code; no sessions.
Nothing is dropped; a file name that does not follow the pattern, or an
unknown emotion letter, is an error naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .. import audio
from ..errors import InputError
from ..ratings import PRIMARY
from .base import ReadResult

LETTERS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
           "T": "sadness", "N": "neutral"}
_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[ab]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])$")


def _wavs(root: Path) -> list[Path]:
    folder = root / "wav" if (root / "wav").is_dir() else root
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav") \
        if folder.is_dir() else []
    if not files:
        raise InputError("no .wav files found", file=folder,
                         fix="point --source at the EmoDB folder that holds wav/")
    return files


def read_recognition(path: Path) -> pd.DataFrame:
    """``erkennung.txt``: clip, recognition rate and naturalness in percent (decimal commas)."""
    rows = []
    with path.open(encoding="latin-1") as fh:
        header = fh.readline().split("\t")
        if [h.strip() for h in header[:4]] != ["Nr.", "Satz", "erkannt", "natuerlich"]:
            raise InputError("unexpected header (want Nr., Satz, erkannt, natuerlich)", file=path,
                             row=1, fix="use the erkennung.txt shipped with EmoDB")
        for line_no, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("\t")]
            try:
                rows.append((Path(parts[1]).stem, float(parts[2].replace(",", ".")),
                             float(parts[3].replace(",", "."))))
            except (IndexError, ValueError):
                raise InputError("expected: number, file name, recognition %, naturalness %",
                                 file=path, row=line_no,
                                 fix="use the erkennung.txt shipped with EmoDB") from None
    return pd.DataFrame(rows, columns=["utterance_id", "recognition", "naturalness"])


def read_emodb(source: str | Path | None = None, **_: object) -> ReadResult:
    if source is None:
        raise InputError("EmoDB needs --source (the corpus folder with wav/)",
                         fix="serbench prepare emodb --source path/to/emodb")
    root = Path(source)
    rows, files = [], []
    for path in _wavs(root):
        m = _NAME.match(path.stem)
        if not m:
            raise InputError(f"file name {path.name!r} does not follow the EmoDB pattern "
                             "SSTTTEV.wav (speaker, text, emotion letter, version)", file=path,
                             fix="keep the corpus's original file names")
        if m["emotion"] not in LETTERS:
            raise InputError(f"unknown EmoDB emotion letter {m['emotion']!r}", file=path,
                             fix=f"EmoDB letters are {sorted(LETTERS)}")
        seconds = audio.duration(path)
        rows.append({"utterance_id": path.stem, "rater_id": None, "label": m["emotion"],
                     "question": PRIMARY, "speaker_id": m["speaker"], "session": None,
                     "audio_path": str(path.resolve()), "duration": seconds,
                     "source": str(path), "source_row": 1})
        files.append(str(path))
    table = pd.DataFrame(rows)
    notes = [f"{len(table)} clips, {table['speaker_id'].nunique()} speakers; one intended "
             "label per clip (no per-rater answers in the release)"]
    rec_file = root / "erkennung.txt"
    if rec_file.exists():
        rec = read_recognition(rec_file)
        missing = sorted(set(table["utterance_id"]) - set(rec["utterance_id"]))
        if missing:
            raise InputError(f"{len(missing)} clip(s) with audio are not in the perception test "
                             f"table, e.g. {missing[:3]}", file=rec_file,
                             fix="use the erkennung.txt shipped with this copy of EmoDB")
        sel = rec[rec["utterance_id"].isin(table["utterance_id"])]
        notes.append(f"erkennung.txt: {len(rec)} clips in the perception test (20 listeners), "
                     f"{len(sel)} of them released; recognition rate of the released clips: "
                     f"mean {sel['recognition'].mean():.1f}%, min {sel['recognition'].min():.0f}%")
        files.append(str(rec_file))
    return ReadResult(table=table, files=files, counts_only=True, notes=notes)
