"""Run rawcap with a student's layer functions in place of the textbook's (version 0).

    with rawcap.use_layers("hw"):           # a folder written by `python -m rawcap.exercises make`
        loss, parts, grads = loss_and_grads(...)            # runs the student's functions

    python -m rawcap.train --layers hw/          python -m rawcap.gradcheck --layers hw/

The folder holds copies of layer files (lstm.py, attention.py, ...) and exercises.json, the list
of the functions the student writes. Each of them replaces the textbook's function everywhere
rawcap calls it: through rawcap.backend, which also pins the function's op to version 0 (so no
kernel or fast version runs instead), and through every module attribute that names the
textbook's function: `nn.lstm_step_backward` in the model, the re-exports in rawcap.layers
(patching only those used to do nothing), a layer module's own globals. Every call is counted:
a supplied function that never runs is an error, never a silent pass, and so is a function whose
name or arguments are not the contract's.
"""
import difflib
import functools
import importlib
import importlib.util
import inspect
import itertools
import json
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from . import backend
from .exercises.solutions import LAYERS_DIR, exercises

MANIFEST = "exercises.json"
_PATCHED = ("rawcap", "kernels", "tools", "__main__")     # the packages whose modules are patched
_loaded = itertools.count()


class StudentLayerError(ValueError):
    """A student folder that cannot stand in for the layers; the message names the file."""


class NotImplementedByStudent(NotImplementedError):
    """A student's function that is still the stub."""


def layer_modules():
    """The names of rawcap's layer files: conv, lstm, ... (a student file must be one of them)."""
    return sorted(p.stem for p in LAYERS_DIR.glob("*.py") if p.stem not in ("__init__", "checks"))


def _public_functions(module):
    layer = importlib.import_module(f"rawcap.layers.{module}")
    return {name: f for name, f in vars(layer).items() if inspect.isfunction(f)
            and not name.startswith("_") and f.__module__ == layer.__name__}


_CONTRACT = {module: _public_functions(module) for module in layer_modules()}   # the textbook's


def contract(module):
    """{name: function} of the public functions that rawcap.layers.<module> defines."""
    return _CONTRACT[module]


def _did_you_mean(name, names):
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _import(path):
    spec = importlib.util.spec_from_file_location(f"rawcap_student_{next(_loaded)}.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise StudentLayerError(f"{path}:{e.lineno}: {e.msg}") from None
    except Exception as e:
        raise StudentLayerError(f"{path}: importing it raised {type(e).__name__}: {e}") from None
    return module


def load_layers(folder):
    """The student's functions in `folder`, checked against the contract -> StudentLayers."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudentLayerError(f"--layers {folder}: no such folder")
    modules = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if path.stem not in layer_modules():
            raise StudentLayerError(f"{path}: not a rawcap layer file; they are "
                                    f"{', '.join(m + '.py' for m in layer_modules())}")
        module = modules[path.stem] = _import(path)
        known = contract(path.stem)
        for name, f in vars(module).items():
            if (inspect.isfunction(f) and f.__module__ == module.__name__
                    and not name.startswith("_") and name not in known):
                raise StudentLayerError(f"{path}:{f.__code__.co_firstlineno}: {name} is not in "
                                        f"rawcap.layers.{path.stem}{_did_you_mean(name, known)}")
    if not modules:
        raise StudentLayerError(f"{folder}: no layer files (.py) in it")
    every = exercises()
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            names = json.loads(manifest.read_text())["exercises"]
        except (ValueError, KeyError, TypeError) as e:
            raise StudentLayerError(f"{manifest}: not an exercise list ({e})") from None
    else:
        names = [n for n, m in every.items() if m in modules and n in vars(modules[m])]
    functions = {}
    for name in names:
        owner = every.get(name) or next((m for m in layer_modules() if name in contract(m)), None)
        if owner is None:
            everything = [n for m in layer_modules() for n in contract(m)]
            raise StudentLayerError(f"{manifest}: {name} is not a rawcap layer function"
                                    f"{_did_you_mean(name, everything)}")
        path = folder / f"{owner}.py"
        f = vars(modules[owner]).get(name) if owner in modules else None
        if not inspect.isfunction(f):
            raise StudentLayerError(f"{manifest} lists {name}, but {path} does not define it")
        expected = inspect.signature(contract(owner)[name])
        if list(inspect.signature(f).parameters) != list(expected.parameters):
            raise StudentLayerError(f"{path}:{f.__code__.co_firstlineno}: {name}{inspect.signature(f)} "
                                    f"does not match the contract {name}{expected}")
        functions[name] = (owner, f)
    if not functions:
        raise StudentLayerError(f"{folder}: supplies no layer functions (see {MANIFEST})")
    return StudentLayers(folder, modules, functions)


class StudentLayers:
    """A student's functions (name -> (layer module, function)) and how often each ran."""
    _active = None

    def __init__(self, folder, modules, functions):
        self.folder, self.modules, self.functions = Path(folder), modules, functions
        self.calls = Counter()
        self.in_place = ()

    def where(self, name):
        """The file that holds the student's `name`."""
        return self.folder / f"{self.functions[name][0]}.py"

    def _counted(self, name):
        student = self.functions[name][1]

        @functools.wraps(student)
        def call(*args, **kwargs):
            self.calls[name] += 1
            try:
                return student(*args, **kwargs)
            except NotImplementedByStudent:
                raise
            except NotImplementedError:
                raise NotImplementedByStudent(f"{self.where(name)}: {name} is not implemented yet") from None
        return call

    @contextmanager
    def installed(self, names=None):
        """Run the block with the student's functions `names` (default: all) in place of the
        textbook's; the student's other functions are the textbook's inside their own files too."""
        if StudentLayers._active is not None:
            raise RuntimeError(f"{StudentLayers._active.folder}'s layers are in effect already")
        names = list(self.functions if names is None else names)
        textbook = {n: contract(m)[n] for n, (m, _) in self.functions.items()}
        wrappers = {n: self._counted(n) for n in names}
        patches = []

        def patch(module, attr, value):
            patches.append((module, attr, getattr(module, attr)))
            setattr(module, attr, value)

        for module in _patched_modules():
            for attr, value in list(vars(module).items()):
                for name in names:
                    if value is textbook[name]:
                        patch(module, attr, wrappers[name])
        for module in self.modules.values():
            for attr, value in list(vars(module).items()):
                for name, (_, student) in self.functions.items():
                    if value is student:
                        patch(module, attr, wrappers.get(name, textbook[name]))
        pinned = {op for op, (home, _, _) in backend.OPS.items()
                  for name in names if home == f"rawcap.layers.{self.functions[name][0]}"}
        StudentLayers._active, self.in_place = self, tuple(names)
        try:
            with backend.version_0_replaced({n: w for n, w in wrappers.items() if n in backend.OP_OF},
                                            pinned):
                yield self
        finally:
            for module, attr, value in reversed(patches):
                setattr(module, attr, value)
            for module in _patched_modules():       # modules imported inside the block
                for attr, value in list(vars(module).items()):
                    for name, wrapper in wrappers.items():
                        if value is wrapper:
                            setattr(module, attr, textbook[name])
            StudentLayers._active, self.in_place = None, ()

    def never_called(self, names=None):
        """The functions among `names` (default: those in place) that have not run yet."""
        return [n for n in (self.in_place if names is None else names) if not self.calls[n]]

    def check_called(self, what, exempt=()):
        """A StudentLayerError naming every function in place that `what` never called."""
        missing = [n for n in self.never_called() if n not in exempt]
        if missing:
            listed = ", ".join(f"{n} ({self.where(n)})" for n in missing)
            raise StudentLayerError(f"{listed}: supplied but never called by {what}; a function "
                                    "that never runs is not being tested")


def _patched_modules():
    return [m for name, m in list(sys.modules.items())
            if m is not None and name.split(".")[0] in _PATCHED]


@contextmanager
def use_layers(folder, only=None, require_calls=True):
    """`with use_layers("hw"): ...` runs the block with the functions of the student folder in
    place of the textbook's (only those named in `only`, if given). With require_calls, a
    function that the block never called is a StudentLayerError when the block ends."""
    if StudentLayers._active is not None:
        raise RuntimeError(f"{StudentLayers._active.folder}'s layers are in effect already")
    student = load_layers(folder)
    if only is not None:
        unknown = [n for n in only if n not in student.functions]
        if unknown:
            raise StudentLayerError(f"{folder}: does not supply {', '.join(unknown)}; it supplies "
                                    f"{', '.join(student.functions)}")
    with student.installed(only):
        yield student
        if require_calls:
            student.check_called("the with block")
