"""batchnorm2d (rawcap.layers.batchnorm): the forward against its definition and PyTorch, the
running statistics, float32, gradients in both modes, and bad input."""
import numpy as np
import pytest

from rawcap.gradcheck import batchnorm2d_check, gradient_errors
from rawcap.layers import batchnorm2d_backward, batchnorm2d_forward


def inputs(rng, shape=(3, 4, 5, 2), dtype=np.float64):
    C = shape[1]
    x = (3 * rng.standard_normal(shape) + rng.standard_normal(C)[:, None, None]).astype(dtype)
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    mean, var = rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype)
    return x, gamma, beta, mean, var


def test_train_mode_normalises_each_channel_and_moves_the_running_statistics():
    rng = np.random.default_rng(0)
    x, gamma, beta, mean, var = inputs(rng)
    out, (new_mean, new_var), _ = batchnorm2d_forward(x, gamma, beta, mean, var, momentum=0.25,
                                                      eps=1e-5)
    for c in range(x.shape[1]):                     # one channel at a time, from the definition
        values = x[:, c].ravel()
        mu, sigma2 = values.mean(), values.var()
        expected = gamma[c] * (x[:, c] - mu) / np.sqrt(sigma2 + 1e-5) + beta[c]
        np.testing.assert_allclose(out[:, c], expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(new_mean[c], 0.75 * mean[c] + 0.25 * mu, rtol=1e-12)
        np.testing.assert_allclose(new_var[c], 0.75 * var[c] + 0.25 * values.var(ddof=1), rtol=1e-12)
    standardised = (out - beta[:, None, None]) / gamma[:, None, None]
    np.testing.assert_allclose(standardised.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(standardised.var(axis=(0, 2, 3)), 1, rtol=1e-4)   # eps's share


def test_eval_mode_uses_the_running_statistics_and_leaves_them_unchanged():
    rng = np.random.default_rng(1)
    x, gamma, beta, mean, var = inputs(rng)
    before = mean.copy(), var.copy()
    out, (same_mean, same_var), _ = batchnorm2d_forward(x, gamma, beta, mean, var, train=False)
    expected = (gamma[:, None, None] * (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
                + beta[:, None, None])
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(same_mean, before[0])
    np.testing.assert_array_equal(same_var, before[1])
    assert same_mean is not mean                     # a copy: the caller's arrays stay its own
    np.testing.assert_array_equal(mean, before[0])   # and the inputs are not written


def test_one_image_in_eval_mode_is_the_same_as_in_a_batch():
    """Eval mode is per image: captioning a photo alone gives what it gets in a batch."""
    rng = np.random.default_rng(2)
    x, gamma, beta, mean, var = inputs(rng)
    batch = batchnorm2d_forward(x, gamma, beta, mean, var, train=False)[0]
    alone = batchnorm2d_forward(x[1:2], gamma, beta, mean, var, train=False)[0]
    np.testing.assert_array_equal(alone[0], batch[1])


def test_forward_backward_and_statistics_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, gamma, beta, mean, var = inputs(rng, (4, 3, 6, 5))
    dout = rng.standard_normal(x.shape)
    for train in (True, False):
        bn = torch.nn.BatchNorm2d(3, momentum=0.1, eps=1e-5).double()
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(gamma))
            bn.bias.copy_(torch.from_numpy(beta))
            bn.running_mean.copy_(torch.from_numpy(mean))
            bn.running_var.copy_(torch.from_numpy(var))
        bn.train(train)
        tx = torch.from_numpy(x).requires_grad_()
        tout = bn(tx)
        tout.backward(torch.from_numpy(dout))
        out, (new_mean, new_var), cache = batchnorm2d_forward(x, gamma, beta, mean, var, train=train)
        dx, dgamma, dbeta = batchnorm2d_backward(dout, cache)
        for got, want in ((out, tout), (new_mean, bn.running_mean), (new_var, bn.running_var),
                          (dx, tx.grad), (dgamma, bn.weight.grad), (dbeta, bn.bias.grad)):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("seed, sizes", [
    (0, {}),
    # (Two values per channel, the fewest train mode takes, normalise to +-1 whatever x is: dx is
    # eps-sized there, and its relative error measures rounding only. Three is the fewest useful.)
    (1, dict(N=1, C=1, H=3, W=1)),
    (2, dict(N=3, C=2, H=1, W=1)),          # no spatial extent: statistics over the batch only
    (3, dict(N=1, C=4, H=3, W=5)),
])
def test_gradients_in_float64(train, seed, sizes):
    rng = np.random.default_rng(seed)
    for name, _, error in gradient_errors(batchnorm2d_check(rng, train=train, **sizes), rng):
        assert error < 1e-7, f"{name}: {error:.1e}"


@pytest.mark.parametrize("train", [True, False])
def test_float32_agrees_with_float64(train):
    """float32 in, float32 out; within 1e-5 of the float64 result (relative to its largest entry)."""
    rng = np.random.default_rng(4)
    args64 = inputs(rng, (8, 6, 7, 7))
    dout64 = rng.standard_normal(args64[0].shape)
    args32, dout32 = [a.astype(np.float32) for a in args64], dout64.astype(np.float32)
    out64, stats64, cache64 = batchnorm2d_forward(*args64, train=train)
    out32, stats32, cache32 = batchnorm2d_forward(*args32, train=train)
    grads64 = batchnorm2d_backward(dout64, cache64)
    grads32 = batchnorm2d_backward(dout32, cache32)
    for got, want in zip((out32, *stats32, *grads32), (out64, *stats64, *grads64), strict=True):
        assert got.dtype == np.float32
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("change, message", [
    (dict(x=np.zeros((4, 5, 2))), "x must have 4 dims"),
    (dict(gamma=np.zeros(3)), "gamma has shape .3,., but its C axis should be 4"),
    (dict(running_var=np.zeros((4, 1))), "running_var must have 1 dims"),
    (dict(beta=np.zeros(4, np.float32)), "beta is float32 but x is float64"),
    (dict(train=1), "train must be True or False"),
    (dict(momentum=1.5), "momentum must lie in .0, 1."),
    (dict(eps=0.0), "eps must be > 0"),
    (dict(x=np.zeros((1, 4, 1, 1))), "train mode needs more than one value per channel"),
])
def test_bad_input_names_the_argument(change, message):
    args = dict(x=np.zeros((2, 4, 3, 3)), gamma=np.ones(4), beta=np.zeros(4),
                running_mean=np.zeros(4), running_var=np.ones(4), train=True, momentum=0.1,
                eps=1e-5)
    args.update(change)
    with pytest.raises(ValueError, match=f"batchnorm2d_forward: {message}"):
        batchnorm2d_forward(**args)


def test_backward_rejects_a_gradient_of_the_wrong_shape():
    _, _, cache = batchnorm2d_forward(np.ones((2, 3, 2, 2)), np.ones(3), np.zeros(3), np.zeros(3),
                                      np.ones(3))
    with pytest.raises(ValueError, match="batchnorm2d_backward: dout must have the forward"):
        batchnorm2d_backward(np.ones((2, 3, 2, 1)), cache)


def test_train_gradient_is_orthogonal_to_shifting_and_scaling_a_channel():
    """docs/backprop.md: sum_j dx_j = 0 and sum_j dx_j xhat_j = 0 in every channel (the second
    up to a factor eps / (var + eps): eps is made negligible here)."""
    rng = np.random.default_rng(5)
    x, gamma, beta, mean, var = inputs(rng)
    _, _, cache = batchnorm2d_forward(x, gamma, beta, mean, var, eps=1e-14)
    dx, _, _ = batchnorm2d_backward(rng.standard_normal(x.shape), cache)
    xhat = cache[0]
    np.testing.assert_allclose(dx.sum(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose((dx * xhat).sum(axis=(0, 2, 3)), 0, atol=1e-12)
