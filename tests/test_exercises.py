"""Exercises: make cuts exactly the marked solutions; grade gives full marks to the solutions, zero
to the stubs, and takes points from the right function for each planted bug, which
gradcheck --explain then localises to the right gate block, time step or pixels."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rawcap import gradcheck
from rawcap.exercises.cases import CASES
from rawcap.exercises.grade import POINTS, grade_folder
from rawcap.exercises.make import ORDER, make
from rawcap.exercises.planted import PLANTED, plant
from rawcap.exercises.solutions import BEGIN, END, cut, exercises, marked_functions
from rawcap.explain import cs231n_error


ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "rawcap.exercises", *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def answer_key(tmp_path_factory):
    folder = tmp_path_factory.mktemp("key")
    make(folder, solutions=True)
    return folder


@pytest.fixture
def key(answer_key, tmp_path):
    """A fresh copy of the answer key, to plant a bug in."""
    for path in answer_key.iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    return tmp_path


# ---- make ------------------------------------------------------------------------------------

def test_every_marked_function_is_graded_and_the_default_order_is_marked():
    assert set(exercises()) == set(CASES)
    assert set(ORDER) <= set(exercises())


def test_make_cuts_only_the_chosen_solutions(tmp_path):
    make(tmp_path, only=["lstm_pointwise_backward"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "exercises.json", "lstm.py"]
    text = (tmp_path / "lstm.py").read_text()
    assert 'raise NotImplementedError("lstm_pointwise_backward: your code here")' in text
    assert "dc_total = dh * o * (1 - tanh_c ** 2)" not in text            # the solution is gone
    assert "da_i = dc_total * g * i * (1 - i)" in text                     # the docstring stays
    assert "da, dc_prev = ops.lstm_pointwise_backward(dh, dc, pointwise)" in text   # others stay
    assert BEGIN not in text and END not in text and "from rawcap.backend import" in text
    assert json.loads((tmp_path / "exercises.json").read_text()) == {"exercises": ["lstm_pointwise_backward"]}


def test_make_rejects_unknown_names_and_keeps_existing_work(tmp_path):
    with pytest.raises(ValueError, match="lstm_pointwise_backwards is not an exercise"):
        make(tmp_path, only=["lstm_pointwise_backwards"])
    make(tmp_path, only=["col2im"])
    (tmp_path / "conv.py").write_text("# a student's work")
    with pytest.raises(ValueError, match=r"conv.py exists \(a student's work\?\)"):
        make(tmp_path, only=["col2im"])
    make(tmp_path, only=["col2im"], force=True)
    assert "def col2im" in (tmp_path / "conv.py").read_text()


def test_unbalanced_markers_are_errors_with_the_line():
    source = f"def f(x):\n    {BEGIN}\n    return x\n"
    assert marked_functions(source) == ["f"]
    with pytest.raises(ValueError, match="f.py:2: # SOLUTION BEGIN is never closed"):
        cut(source, {"f"}, "f.py")
    with pytest.raises(ValueError, match="f.py:2: # SOLUTION END without"):
        cut(f"def f(x):\n    {END}\n", set(), "f.py")


# ---- grade -----------------------------------------------------------------------------------

def test_the_answer_key_gets_full_marks_on_every_exercise(tmp_path):
    make(tmp_path, only=list(exercises()), solutions=True)
    grades = grade_folder(tmp_path)
    assert [g.function for g in grades] == list(exercises())
    assert all(g.score == POINTS and g.passed == g.total > 0 and not g.note for g in grades), grades


def test_fresh_stubs_get_zero_not_implemented_and_no_traceback(tmp_path):
    assert run_cli("make", "--out", tmp_path / "hw").returncode == 0
    done = run_cli("grade", tmp_path / "hw", "--json", tmp_path / "results.json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0 and [t["name"] for t in results["tests"]] == list(ORDER)
    for test in results["tests"]:
        assert test["score"] == 0 and test["max_score"] == POINTS and test["status"] == "failed"
        assert "not implemented" in test["output"]
    assert done.stdout.count("not implemented") >= len(ORDER)


EXPLAINED = {   # name: (gradcheck layer, what --explain must say)
    "no tanh'(c)": ("lstm_pointwise", ["wrong: gate i, gate f, gate g; right: gate o",
                                       "hint: gates i, f, g are wrong and o is right"]),
    "dc_prev = dc": ("lstm", ["wrong: t = 0, t = 1, t = 2; right: t = 3", "hint: only the last step (t = 3)"]),
    "i and f swapped": ("lstm_step", ["wrong: gate i, gate f; right: gate g, gate o",
                                      "hint: only gate i and gate f"]),
    "softmax without - sum": ("attention", ["attention dfeats[2, 5, 4]: rawcap", "(yes)",
                                            "hint: dfeats is right, so alpha is"]),
    "col2im overwrites": ("conv2d", ["wrong: 2 windows, 4 windows; right: 1 window",
                                     "hint: dx is right where one window covers a pixel"]),
}


@pytest.mark.parametrize("bug", PLANTED)
def test_a_planted_bug_costs_points_in_its_function_only(bug, key):
    module, line, wrong, function = PLANTED[bug]
    plant(key, module, line, wrong)
    grades = {g.function: g for g in grade_folder(key)}
    assert grades[function].score < POINTS and grades[function].details, grades[function]
    assert all(g.score == POINTS for name, g in grades.items() if name != function), grades


@pytest.mark.parametrize("bug", PLANTED)
def test_explain_names_the_block_or_step_of_a_planted_bug(bug, key, capsys):
    module, line, wrong, _ = PLANTED[bug]
    plant(key, module, line, wrong)
    layer, expected = EXPLAINED[bug]
    assert gradcheck.main(["--layers", str(key), "--layer", layer, "--explain"]) == 1
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, f"{text!r} not in:\n{out}"
    assert "worst entry" in out and "analytic" in out and "CS231n" in out


def test_a_crashing_function_is_a_clean_failure_of_that_function(key):
    plant(key, "pool", "    dx = xp.zeros(x_shape, dtype=dout.dtype)\n",
          "    dx = xp.zeros(x_shape, dtype=dout.dtype)\n    dx = dx[:, :, :1][5]\n")
    grades = {g.function: g for g in grade_folder(key)}
    pool = grades["maxpool2d_backward"]
    assert pool.score == 0 and pool.note == "crashed"
    assert "raised IndexError" in pool.details[1] and "pool.py:" in pool.details[1]
    assert all(g.score == POINTS for name, g in grades.items() if name != "maxpool2d_backward")


def test_cs231n_error_is_entrywise():
    a, b = np.array([1.0, 0.0]), np.array([1.0, 1e-9])
    assert cs231n_error(a, a) == 0.0
    assert cs231n_error(a, b) == pytest.approx(1e-9 / 1e-8)      # floored at 1e-8
    assert cs231n_error([2.0], [1.0]) == pytest.approx(1 / 3)


def test_a_folder_that_cannot_load_scores_zero_with_the_error(key, tmp_path):
    plant(key, "loss", "def softmax_cross_entropy_backward(dloss, cache):",
          "def softmax_cross_entropy_backward(dloss, cache)")
    done = run_cli("grade", key, "--json", tmp_path / "results.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert re.search(r"loss.py:\d+: ", done.stderr), done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0 and "loss.py" in results["output"]
