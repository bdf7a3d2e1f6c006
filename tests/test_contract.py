"""The layer contract: every backward, in every version, is op_backward(dout..., cache)."""
import inspect

import pytest

from rawcap import layers
from rawcap.backend import OP_OF, implementation, versions


def backward_functions():
    """(label, function) for every *_backward in rawcap.layers and every version of each op."""
    found = [(name, getattr(layers, name)) for name in dir(layers) if name.endswith("_backward")]
    for function, op in OP_OF.items():
        if function.endswith("_backward"):
            found += [(f"{function} v{v}", implementation(function, v)) for v in versions(op) if v]
    return found


@pytest.mark.parametrize("label, function", backward_functions(), ids=lambda x: x if isinstance(x, str) else "")
def test_backward_takes_the_upstream_gradient_first_and_the_cache_last(label, function):
    names = list(inspect.signature(function).parameters)
    assert names[-1] == "cache", f"{label}{inspect.signature(function)}: the cache must come last"
    assert names[0].startswith("d"), f"{label}{inspect.signature(function)}: the upstream gradient comes first"
