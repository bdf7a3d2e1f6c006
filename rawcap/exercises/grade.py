"""Grade an exercise folder: points per function, and a results.json that autograders read.

Each function is graded alone: the student's function (with its forward, if the student
writes that too) in place of the textbook's, everything else the textbook's, so a bug costs
points in the function that has it and nowhere else. Its points are its share of the cases
(cases.py) that pass. A stub scores zero as "not implemented"; a function that raises gets a
one-line failure naming the file and line, never a traceback.

results.json follows Gradescope's format: {"score", "output", "tests": [{"name", "score",
"max_score", "status", "output"}]}.
"""
import json
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..student import NotImplementedByStudent, StudentLayerError, load_layers
from .cases import CASES, SEEDS

POINTS = 10         # per function


@dataclass
class Grade:
    function: str
    passed: int = 0
    total: int = 0
    note: str = ""                   # "not implemented", "crashed", ...
    details: list = field(default_factory=list)

    @property
    def score(self):
        return round(POINTS * self.passed / self.total, 2) if self.total else 0.0


def partner(function, supplied):
    """The student's forward that goes with `function` (its cache is theirs), if they write it."""
    forward = function.replace("_backward", "_forward")
    return [forward] if forward != function and forward in supplied else []


def where_it_crashed(error, folder):
    """'file:line' of the deepest frame of the traceback inside the student's folder."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if Path(f.filename).resolve().is_relative_to(Path(folder).resolve())]
    return f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def grade_function(student, function):
    """Run every case of `function` over SEEDS with only it (and its forward) from the student."""
    grade = Grade(function)
    with student.installed([function] + partner(function, student.functions)):
        for case in CASES[function]:
            for seed in SEEDS:
                grade.total += 1
                try:
                    failures = case.run(np.random.default_rng(seed))
                except NotImplementedByStudent as e:
                    grade.note, grade.details = "not implemented", [str(e)]
                    grade.total = sum(len(SEEDS) for _ in CASES[function])
                    return grade
                except Exception as e:
                    failures = [f"raised {type(e).__name__}: {e}{where_it_crashed(e, student.folder)}"]
                    grade.note = grade.note or "crashed"
                if failures:
                    if len(grade.details) < 1:
                        grade.details = [f"failed on {case.label}, seed {seed}:"] + failures
                else:
                    grade.passed += 1
    if not student.calls[function]:
        grade.passed, grade.note = 0, "never called by its checks"
    return grade


def grade_folder(folder, functions=None):
    """-> [Grade] for each function the folder supplies (or those named)."""
    student = load_layers(folder)
    names = list(student.functions) if functions is None else functions
    ungraded = [n for n in names if n not in CASES]
    if ungraded:
        raise StudentLayerError(f"{folder}: no grading cases for {', '.join(ungraded)}")
    return [grade_function(student, name) for name in names]


def table(grades):
    """The points table, one row per function, then the total."""
    width = max(len(g.function) for g in grades + [Grade("function")])
    lines = [f"{'function':<{width}}  {'points':>9}  {'cases':>7}"]
    for g in grades:
        lines.append(f"{g.function:<{width}}  {g.score:>5.1f}/{POINTS:<3}  "
                     f"{g.passed:>3}/{g.total:<3}  {g.note}".rstrip())
    total = sum(g.score for g in grades)
    lines.append(f"{'total':<{width}}  {total:>5.1f}/{POINTS * len(grades):<3}")
    return lines


def results_json(grades, error=None):
    """Gradescope's results.json for these grades (or for a folder that could not be loaded)."""
    if error is not None:
        return {"score": 0.0, "output": f"Could not load the exercises: {error}", "tests": []}
    return {
        "score": round(sum(g.score for g in grades), 2),
        "output": "\n".join(table(grades)),
        "visibility": "visible",
        "tests": [{"name": g.function, "score": g.score, "max_score": POINTS,
                   "status": "passed" if g.passed == g.total else "failed",
                   "output": "\n".join([f"{g.passed}/{g.total} cases passed"
                                        + (f": {g.note}" if g.note else "")] + g.details)}
                  for g in grades],
    }


def write_json(path, data):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
