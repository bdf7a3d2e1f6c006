"""The checker itself: it must measure the right thing, and it must be able to fail."""
import numpy as np
import pytest

from rawcap import gradcheck, layers
from rawcap.gradcheck import LIMIT, LayerCheck, gradient_errors, numerical_gradient, relative_error


def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.3]])
    dout = np.array([[1.0, 2.0, -1.0], [0.5, 3.0, 1.0]])
    grad = numerical_gradient(lambda: x ** 3, x, dout)
    np.testing.assert_allclose(grad, 3 * x ** 2 * dout, rtol=1e-9, atol=1e-9)


def test_numerical_gradient_sums_over_tuple_outputs_and_restores_x():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(5)
    before = x.copy()
    d1, d2 = rng.standard_normal(5), rng.standard_normal(5)
    grad = numerical_gradient(lambda: (np.sin(x), x ** 2), x, (d1, d2))
    np.testing.assert_allclose(grad, np.cos(x) * d1 + 2 * x * d2, rtol=1e-8)
    assert np.array_equal(x, before)


def test_relative_error_is_scale_free_and_zero_for_equal_arrays():
    a = np.array([1.0, -2.0, 4.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, a + [0, 0, 0.004]) == pytest.approx(0.004 / 4.004)
    assert relative_error(1e6 * a, 1e6 * (a + [0, 0, 0.004])) == pytest.approx(0.004 / 4.004)


def broken_affine_check(rng):
    """affine with db scaled by 1.01: a one-percent bug the checker must catch."""
    check = gradcheck.affine_check(rng)

    def backward(dout, cache):
        dx, dw, db = layers.affine_backward(dout, cache)
        return dx, dw, 1.01 * db

    return LayerCheck("broken_affine", check.forward, backward, check.args, check.grads)


def test_gradient_errors_catches_a_wrong_backward():
    rng = np.random.default_rng(0)
    errors = {name: error for name, _, error in gradient_errors(broken_affine_check(rng), rng)}
    assert errors["dx"] < gradcheck.TOLERANCE and errors["dw"] < gradcheck.TOLERANCE
    assert errors["db"] > LIMIT


def test_command_line_checks_every_layer(capsys):
    assert gradcheck.main([]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split(" | ")[0].strip() == "layer"
    for layer in gradcheck.CHECKS:
        assert f"\n{layer} " in out
    assert " NO" not in out and "0 failed" in out


def test_command_line_layer_filter_and_failure_exit_status(capsys, monkeypatch):
    assert gradcheck.main(["--layer", "relu", "--seed", "3"]) == 0
    assert "lstm" not in capsys.readouterr().out
    monkeypatch.setitem(gradcheck.CHECKS, "affine", broken_affine_check)
    assert gradcheck.main(["--layer", "affine"]) == 1
    out = capsys.readouterr().out
    assert "NO" in out and "1 failed" in out
