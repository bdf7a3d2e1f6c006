"""Write an exercise folder: copies of the layer files with the chosen solutions cut out."""
import json
import os
import textwrap
from pathlib import Path

from .solutions import cut, exercises, layer_files
from ..student import MANIFEST

ORDER = ("lstm_pointwise_backward", "lstm_step_backward", "lstm_backward", "attention_backward",
         "softmax_cross_entropy_backward", "col2im", "conv2d_backward", "maxpool2d_backward")
"""The default exercises, in the suggested order: pointwise, step, sequence, attention, loss,
conv/pool. The marked forwards (lstm_pointwise_forward, attention_forward) are optional extras."""

README = """# Exercises

Write the body of each function listed in exercises.json where it says `raise
NotImplementedError`; its docstring gives the shapes and equations, and docs/backprop.md in
rawcap derives them. Keep the names and arguments: the grader and the captioner call them.

    python -m rawcap.exercises grade {folder}                 # points per function
    python -m rawcap.gradcheck --layers {folder} --explain    # where a gradient goes wrong
    python -m rawcap.train --layers {folder}                  # the captioner, on your layers

{order}.
"""


def write_atomic(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def make(out, only=None, solutions=False, force=False):
    """Write the exercise folder `out` for the functions `only` (default: ORDER); solutions=True
    keeps the solutions in (an answer key). Files already there are an error (they may be a
    student's work) unless force. -> the functions, in order."""
    every = exercises()
    chosen = list(ORDER if only is None else only)
    unknown = [n for n in chosen if n not in every]
    if unknown:
        raise ValueError(f"--only: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not "
                         f"an exercise; the exercises are {', '.join(every)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = layer_files()
    modules = list(dict.fromkeys(every[n] for n in chosen))
    there = [out / name for name in [f"{m}.py" for m in modules] + [MANIFEST] if (out / name).exists()]
    if there and not force:
        raise ValueError(f"{there[0]} exists (a student's work?): choose another --out, or --force")
    for module in modules:
        stubs = set() if solutions else {n for n in chosen if every[n] == module}
        write_atomic(out / f"{module}.py", cut(files[module].read_text(), stubs, str(files[module])))
    write_atomic(out / MANIFEST, json.dumps({"exercises": chosen}, indent=1) + "\n")
    order = textwrap.fill(", ".join(chosen), 96, initial_indent="Suggested order: ")
    write_atomic(out / "README.md", README.format(folder=f"{out.resolve().name}/", order=order))
    return chosen
