"""The solutions marked in the layer sources, and the student copies cut from them.

A layer function's body may hold one block between the lines `# SOLUTION BEGIN` and
`# SOLUTION END`. A student copy replaces that block by a `raise NotImplementedError` stub,
keeping the signature, the docstring (shapes, equations) and the lines before the block (the
cache unpacked, the argument checks); every other function keeps its code, markers dropped.
"""
import re
from pathlib import Path

BEGIN, END = "# SOLUTION BEGIN", "# SOLUTION END"
LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"
_DEF = re.compile(r"def (\w+)\(")


def stub_line(name, indent):
    return f'{indent}raise NotImplementedError("{name}: your code here")\n'


def marked_functions(source):
    """The names of the top-level functions of `source` that hold a marked solution, in order."""
    names, current = [], None
    for line in source.splitlines():
        match = _DEF.match(line)
        current = match.group(1) if match else current
        if line.strip() == BEGIN:
            names.append(current)
    return names


def cut(source, stubs, where="source"):
    """`source` with the solutions of the functions in `stubs` replaced by stubs, every marker line
    removed, and its relative imports made absolute (from rawcap.layers...), so the copy runs
    from any folder."""
    out, current, skipping, open_at = [], None, False, None
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        match = _DEF.match(line)
        current = match.group(1) if match else current
        marker = line.strip()
        if marker == BEGIN:
            if open_at:
                raise ValueError(f"{where}:{number}: {BEGIN} inside the block opened at line {open_at}")
            open_at, skipping = number, current in stubs
            if skipping:
                out.append(stub_line(current, line[:len(line) - len(line.lstrip())]))
        elif marker == END:
            if not open_at:
                raise ValueError(f"{where}:{number}: {END} without a {BEGIN}")
            open_at, skipping = None, False
        elif not skipping:
            line = re.sub(r"^from \.(\w)", r"from rawcap.layers.\1", line)     # from .checks
            out.append(re.sub(r"^from \.\.", "from rawcap.", line))               # from ..backend
    if open_at:
        raise ValueError(f"{where}:{open_at}: {BEGIN} is never closed")
    return "".join(out)


def layer_files():
    """{module name: path} of the layer files that hold marked solutions."""
    return {path.stem: path for path in sorted(LAYERS_DIR.glob("*.py"))
            if marked_functions(path.read_text())}


def exercises():
    """{function name: module name} for every marked solution, in the layer files' order."""
    return {name: module for module, path in layer_files().items()
            for name in marked_functions(path.read_text())}
