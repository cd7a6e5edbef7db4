"""The front door: ``import serbench`` gives the stable API, a grid runs from a notebook."""

from __future__ import annotations

import doctest
import textwrap
from pathlib import Path

import numpy as np
import pytest

import serbench
from serbench.errors import InputError


def test_every_public_name_resolves():
    for name in serbench.__all__:
        assert getattr(serbench, name) is not None, name
    with pytest.raises(AttributeError):
        _ = serbench.no_such_name  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", ["serbench.rules", "serbench.params", "serbench.vocab",
                                    "serbench.metrics", "serbench.grid", "serbench.prefetch",
                                    "serbench.batching", "serbench.methods.training"])
def test_doctests(module: str, home: Path):  # home: cell_data's example reads the demo
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


PRIOR = textwrap.dedent('''
    import numpy as np
    from serbench import Submission

    class Prior(Submission):
        """The training prior for every clip (a floor, not a model)."""
        name = "prior-test"
        version = "1.0"

        def fit(self, train, dev, spec):
            self.p = train.targets.mean(axis=0)

        def predict_proba(self, batch):
            return np.tile(self.p / self.p.sum(), (len(batch), 1))
''')


def test_notebook_run_gives_records_and_the_leaderboard(home: Path, tmp_path: Path):
    """The README's notebook example, on a submission that trains in no time."""
    plugin = tmp_path / "prior.py"
    plugin.write_text(PRIOR)
    result = serbench.run("demo", f"{plugin}:Prior", runs=tmp_path / "runs",
                          out=tmp_path / "board", resamples=20)
    assert result.counts() == {"run": 45, "already_done": 0, "busy": 0, "failed": 0,
                               "recomputed": 0}  # 5 folds x 3 rules x 3 seeds
    assert (tmp_path / "board" / "leaderboard.json").exists()
    names = [a.submission for tb in result.board.tasks for a in tb.aggregates]
    assert names == ["prior-test"]
    again = serbench.run("demo", f"{plugin}:Prior", runs=tmp_path / "runs", out=None)
    assert again.counts()["already_done"] == 45 and again.board is None
    summary = again.as_json()
    assert summary["counts"]["already_done"] == 45 and len(summary["cells"]) == 45


def test_cell_data_is_what_a_cell_sees(home: Path):
    task = serbench.load_task("demo")
    train = serbench.cell_data("demo", fold=1, rule="AR", split="train")
    split = task.split(1, "train", "AR")
    np.testing.assert_array_equal(train.ids, split.ids)
    np.testing.assert_allclose(train.targets, split.targets)
    assert train.ratings is not None and set(train.ratings["utterance_id"]) == set(split.ids)
    test = serbench.cell_data("demo", fold=1, rule="AR", split="test")
    assert test.ratings is None and test.targets.shape == (0, task.spec.k)
    assert len(test) == len(task.split(1, "test", "AR"))


class Toy(serbench.Submission):
    name = "toy"

    def __init__(self, lr: float = 0.1, layers: int = 2, mode: str | None = None,
                 flag: bool = False) -> None:
        super().__init__(lr=lr, layers=layers, mode=mode, flag=flag)


class Required(serbench.Submission):
    name = "required"

    def __init__(self, path: str) -> None:
        super().__init__(path=path)


class Child(Toy):
    name = "child"

    def __init__(self, extra: int = 1, **base) -> None:
        super().__init__(**base)
        self._config["extra"] = extra


def test_config_is_checked_against_the_declared_options():
    v = serbench.validate_config
    assert v(Toy, {}) == {}
    from serbench.params import defaults

    assert defaults(Toy) == {"lr": 0.1, "layers": 2, "mode": None, "flag": False}
    assert v(Toy, {"lr": 1, "mode": "x"})["lr"] == 1.0  # ints are accepted for floats
    assert v(Child, {"extra": 3, "layers": 4})["layers"] == 4  # **base adds Toy's options
    for bad, words in [({"layers": 2.5}, "toy.layers must be int"),
                       ({"layers": True}, "must be int"),
                       ({"flag": "yes"}, "must be bool"),
                       ({"lr": "fast"}, "must be float"),
                       ({"lyers": 3}, "did you mean layers?")]:
        with pytest.raises(InputError, match=words.replace("?", r"\?")) as err:
            v(Toy, bad)
        assert "--config" in str(err.value)
    with pytest.raises(InputError, match="needs the option"):
        v(Required, {})
    assert v(serbench.Submission, {"anything": 1}) == {"anything": 1}  # declares nothing


def test_a_required_option_does_not_break_resume(home: Path, tmp_path: Path):
    """The old config check called the class with no arguments; a required option broke it."""
    class NeedsPath(serbench.Submission):
        name = "needs-path"

        def __init__(self, path: str) -> None:
            super().__init__(path=path)

        def predict_proba(self, batch):
            return np.full((len(batch), 6), 1 / 6)

    task = serbench.load_task("demo")
    runner = serbench.Runner(task, NeedsPath, {"path": "x"}, runs=tmp_path / "runs",
                             device="cpu")
    (key,) = runner.cells([1], ["AR"], [0])
    assert runner.run_cell(key).status == "done"
    assert runner.run_cell(key).status == "skipped"
    other = serbench.Runner(task, NeedsPath, {"path": "y"}, runs=tmp_path / "runs",
                            device="cpu")
    with pytest.raises(InputError, match="another configuration"):
        other.is_done(key)


def test_a_derived_config_key_does_not_block_resume(home: Path, tmp_path: Path):
    """A record from before a submission started recording a derived key (``transductive``,
    computed from the declared options) is the same configuration, not another one."""
    import json

    class Derived(serbench.Submission):
        name = "derived"

        def __init__(self, normalisation: str = "global") -> None:
            super().__init__(normalisation=normalisation)
            self._config["transductive"] = normalisation == "group"

        def predict_proba(self, batch):
            return np.full((len(batch), 6), 1 / 6)

    task = serbench.load_task("demo")
    runner = serbench.Runner(task, Derived, runs=tmp_path / "runs", device="cpu")
    (key,) = runner.cells([1], ["AR"], [0])
    assert runner.run_cell(key).status == "done"
    path = key.folder(tmp_path / "runs") / "record.json"
    rec = json.loads(path.read_text())
    del rec["config"]["transductive"]  # as an older serbench wrote it
    path.write_text(json.dumps(rec))
    assert runner.is_done(key)
    group = serbench.Runner(task, Derived, {"normalisation": "group"}, runs=tmp_path / "runs",
                            device="cpu")
    with pytest.raises(InputError, match="another configuration"):
        group.is_done(key)
