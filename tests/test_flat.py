"""rawcap.flat: arrays as views into one buffer, and the optimizer's one-operation paths on them."""
import numpy as np
import pytest

from rawcap.flat import buffer_of, flatten
from rawcap.optim import Adam, check_and_clip


def arrays(rng, dtype=np.float64):
    return {"w": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(5).astype(dtype),
            "s": rng.standard_normal(()).astype(dtype)}


def test_flatten_copies_into_views_of_one_buffer():
    source = arrays(np.random.default_rng(0))
    views = flatten(source)
    flat = buffer_of(views)
    assert flat is not None and flat.shape == (18,)
    assert all(np.array_equal(views[k], source[k]) and views[k].shape == source[k].shape for k in source)
    flat[:] = 7.0                           # the views see the buffer
    assert all((v == 7.0).all() for v in views.values())
    zeros = flatten(source, fill=0)
    assert buffer_of(zeros) is not None and all((v == 0).all() for v in zeros.values())


def test_buffer_of_is_none_unless_the_arrays_tile_one_buffer():
    views = flatten(arrays(np.random.default_rng(0)))
    assert buffer_of(dict(reversed(list(views.items())))) is None      # another order
    assert buffer_of({k: views[k] for k in ("w", "b")}) is None          # part of it
    views["b"] = views["b"].copy()                                      # an entry rebound
    assert buffer_of(views) is None
    assert buffer_of(arrays(np.random.default_rng(0))) is None
    assert flatten({}) == {} and buffer_of({}) is None
    mixed = flatten({"a": np.ones(2, np.float32), "b": np.ones(2)})      # two dtypes: no buffer
    assert buffer_of(mixed) is None and mixed["b"].dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_and_clipping_on_one_buffer_give_the_per_array_results(dtype):
    rng = np.random.default_rng(1)
    params, grads = arrays(rng, dtype), [arrays(rng, dtype) for _ in range(3)]
    flat_params = flatten(params)
    apart, together = Adam(params), Adam(flat_params)
    assert buffer_of(together.m) is not None
    for g in grads:
        flat_g = flatten(g)
        check_and_clip(1.0, {}, g, 2.0)
        check_and_clip(1.0, {}, flat_g, 2.0)         # one norm, one scale
        apart.step(params, g, 0.1)
        together.step(flat_params, flat_g, 0.1)      # one update of the four buffers
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for k in params:
        np.testing.assert_allclose(flat_params[k], params[k], rtol=rtol, atol=rtol)
    assert buffer_of(flat_params) is not None        # updated in place: still one buffer


def test_a_restored_adam_state_stays_in_one_buffer():
    params = flatten(arrays(np.random.default_rng(2)))
    adam = Adam(params)
    adam.step(params, flatten(arrays(np.random.default_rng(3))), 0.1)
    again = Adam(params)
    again.load_state_dict(adam.state_dict())
    assert buffer_of(again.m) is not None and buffer_of(again.v) is not None
    assert all(np.array_equal(again.m[k], adam.m[k]) for k in params)
