"""use_layers: a student's functions run everywhere rawcap calls them, or it is a clear error."""
import json

import numpy as np
import pytest

import rawcap
from rawcap import backend, layers
from rawcap.exercises.make import make
from rawcap.exercises.planted import plant
from rawcap.model import Config, init_params, loss_and_grads
from rawcap.student import StudentLayerError, load_layers, use_layers

from test_model import TINY, tiny_batch


@pytest.fixture
def key(tmp_path):
    """An exercise folder with the solutions left in."""
    make(tmp_path / "key", solutions=True)
    return tmp_path / "key"


def model_step(dtype=np.float64):
    """One loss-and-gradients step on the textbook layers (every op at version 0, as
    `--kernels all=0`): the fast CPU versions round differently, so bit-for-bit comparisons
    with a student's layers are against version 0."""
    rng = np.random.default_rng(0)
    config = Config(**TINY)
    params = init_params(config, rng, dtype)
    with backend.kernels_pinned("all=0"):
        return loss_and_grads(params, config, *tiny_batch(rng), np.random.default_rng(5))


def test_the_untouched_solution_gives_the_textbook_loss_and_grads_bit_for_bit(key):
    loss, _, grads = model_step()
    with rawcap.use_layers(key, require_calls=False) as student:
        loss2, _, grads2 = model_step()
    assert loss2 == loss
    for name in grads:
        np.testing.assert_array_equal(grads2[name], grads[name])
    # The captioner runs the LSTM one step at a time: every function but the sequence's ran.
    assert student.never_called(list(student.functions)) == ["lstm_backward"]


def test_the_reexport_trap_is_closed_and_everything_is_restored(key):
    textbook = layers.lstm_pointwise_backward
    with use_layers(key, require_calls=False) as student:
        wrapper = layers.lstm.lstm_pointwise_backward
        assert wrapper is not textbook and layers.lstm_pointwise_backward is wrapper
        assert backend.implementation("lstm_pointwise_backward", 0) is wrapper
        rng = np.random.default_rng(0)
        a, c_prev = rng.standard_normal((2, 8)), rng.standard_normal((2, 2))
        h, c, cache = backend.ops.lstm_pointwise_forward(a, c_prev)
        backend.ops.lstm_pointwise_backward(h, c, cache)         # through the registry
        layers.lstm_pointwise_backward(h, c, cache)              # through the re-export
        assert student.calls["lstm_pointwise_backward"] == 2
    assert layers.lstm_pointwise_backward is textbook is layers.lstm.lstm_pointwise_backward
    assert backend.implementation("lstm_pointwise_backward", 0) is textbook


def test_a_planted_bug_is_what_runs(key):
    plant(key, "lstm", "dc_total = dh * o * (1 - tanh_c ** 2)", "dc_total = dh * o")
    _, _, grads = model_step()
    with use_layers(key, require_calls=False):
        _, _, grads2 = model_step()
    assert not np.allclose(grads2["lstm_wx"], grads["lstm_wx"])
    np.testing.assert_array_equal(grads2["out_w"], grads["out_w"])    # above the LSTM: untouched


def test_student_ops_are_pinned_to_version_0_and_the_pins_restored(key):
    with backend.kernels_pinned("conv2d=1,adam=1"):
        with use_layers(key, only=["col2im"], require_calls=False):
            assert backend.version_in_effect("conv2d", np) == 0         # col2im lives in version 0
            assert backend.version_in_effect("adam", np) == 1
        assert backend.version_in_effect("conv2d", np) == 1


def test_a_supplied_function_never_called_is_an_error(key):
    with pytest.raises(StudentLayerError, match=r"lstm_backward \(.*lstm.py\).*never called"):
        with use_layers(key):
            model_step()


def test_a_stub_says_not_implemented_and_names_the_file(tmp_path):
    make(tmp_path / "hw", only=["lstm_pointwise_backward"])
    with use_layers(tmp_path / "hw", require_calls=False):
        with pytest.raises(NotImplementedError,
                           match=r"hw/lstm.py: lstm_pointwise_backward is not implemented"):
            model_step()


def test_names_and_arguments_outside_the_contract_are_errors(key):
    plant(key, "lstm", "def lstm_step_backward(dh, dc, cache)", "def lstm_step_backwards(dh, dc, cache)")
    with pytest.raises(StudentLayerError, match=r"lstm.py:\d+: lstm_step_backwards is not in "
                                                r"rawcap.layers.lstm \(did you mean lstm_step_backward\?\)"):
        load_layers(key)
    plant(key, "lstm", "def lstm_step_backwards(dh, dc, cache)", "def lstm_step_backward(dh, cache, dc)")
    with pytest.raises(StudentLayerError,
                       match=r"does not match the contract lstm_step_backward\(dh, dc, cache\)"):
        load_layers(key)


def test_the_exercise_list_must_name_contract_functions_the_folder_defines(key):
    (key / "exercises.json").write_text(json.dumps({"exercises": ["attention_backwards"]}))
    with pytest.raises(StudentLayerError, match="did you mean attention_backward"):
        load_layers(key)
    (key / "exercises.json").write_text(json.dumps({"exercises": ["affine_backward"]}))
    with pytest.raises(StudentLayerError, match=r"lists affine_backward, but .*linear.py does not define it"):
        load_layers(key)


def test_bad_folders_are_clear_errors(key, tmp_path):
    with pytest.raises(StudentLayerError, match="no such folder"):
        load_layers(tmp_path / "nowhere")
    (key / "lsmt.py").write_text("")
    with pytest.raises(StudentLayerError, match="lsmt.py: not a rawcap layer file"):
        load_layers(key)
    (key / "lsmt.py").unlink()
    (key / "pool.py").write_text("def maxpool2d_backward(dout, cache)\n    return dout\n")
    with pytest.raises(StudentLayerError, match=r"pool.py:1: "):
        load_layers(key)


def test_one_set_of_layers_at_a_time(key):
    with use_layers(key, require_calls=False):
        with pytest.raises(RuntimeError, match="in effect already"):
            with use_layers(key, require_calls=False):
                pass


def test_gradcheck_checks_a_student_folder_and_every_function_it_supplies(key, capsys):
    from rawcap import gradcheck
    assert gradcheck.main(["--layers", str(key)]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "not checked" not in out
    assert gradcheck.main(["--layers", str(key), "--layer", "lstm_step"]) == 0
    assert "not checked by this run: lstm_backward, attention_backward" in capsys.readouterr().out
