"""Batch normalisation over the channels of an image batch (Ioffe & Szegedy 2015), NCHW.

Shapes: N batch, C channels, H x W image; M = N*H*W entries per channel.

    train:  mu_c = mean of x[:, c],  var_c = mean of (x[:, c] - mu_c)^2   (over the M entries)
    eval:   mu_c = running_mean[c],  var_c = running_var[c]
    xhat = (x - mu_c) / sqrt(var_c + eps);    out = gamma_c * xhat + beta_c

The layer stays stateless: the running statistics go in as arguments and the updated ones come
out as a result, for the caller to keep (the model keeps them beside its parameters, and in
checkpoints). In train mode they move towards the batch's, as PyTorch's BatchNorm2d does
(the running variance takes the unbiased batch variance, var_c * M / (M - 1)):

    running_mean' = (1 - momentum) * running_mean + momentum * mu
    running_var'  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)

In eval mode they come back unchanged. gamma/beta/running_* interchange with torch's
weight/bias/running_mean/running_var. The backward is derived in docs/backprop.md.
"""
from ..backend import array_module
from .checks import Dims, check_grad

AXES = (0, 2, 3)                    # the axes a channel's statistics run over


def check_batchnorm_inputs(where, x, gamma, beta, running_mean, running_var, train, momentum, eps):
    """The argument checks batchnorm2d_forward and its kernels share."""
    dims = Dims(where)
    dims.check("x", x, "N C H W")
    for name, array in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        dims.check(name, array, "C")
    if not isinstance(train, bool):
        dims.fail(f"train must be True or False, got {train!r}")
    if not 0 <= momentum <= 1:
        dims.fail(f"momentum must lie in [0, 1], got {momentum!r}")
    if not eps > 0:
        dims.fail(f"eps must be > 0, got {eps!r}")
    if train and x.shape[0] * x.shape[2] * x.shape[3] < 2:
        dims.fail(f"train mode needs more than one value per channel, got x of shape "
                  f"{tuple(x.shape)} (use train=False, or a larger batch)")


def updated_running_statistics(running_mean, running_var, mu, var, M, momentum):
    """The running statistics after a train-mode batch of M entries per channel (module docstring)."""
    return ((1 - momentum) * running_mean + momentum * mu,
            (1 - momentum) * running_var + momentum * var * (M / (M - 1)))


def batchnorm2d_forward(x, gamma, beta, running_mean, running_var, train=True, momentum=0.1,
                        eps=1e-5):
    """x[N, C, H, W], gamma/beta/running_mean/running_var[C]
    -> out[N, C, H, W], (running_mean'[C], running_var'[C]), cache (module docstring)."""
    check_batchnorm_inputs("batchnorm2d_forward", x, gamma, beta, running_mean, running_var,
                           train, momentum, eps)
    xp = array_module(x)
    if train:
        M = x.shape[0] * x.shape[2] * x.shape[3]
        mu = x.mean(axis=AXES)
        var = ((x - mu[:, None, None]) ** 2).mean(axis=AXES)
        running = updated_running_statistics(running_mean, running_var, mu, var, M, momentum)
    else:
        mu, var = running_mean, running_var
        running = (running_mean.copy(), running_var.copy())
    inv_std = 1 / xp.sqrt(var + eps)
    xhat = (x - mu[:, None, None]) * inv_std[:, None, None]
    out = gamma[:, None, None] * xhat + beta[:, None, None]
    return out, running, (xhat, gamma, inv_std, train)


def batchnorm2d_backward(dout, cache):
    """dout[N, C, H, W] -> dx[N, C, H, W], dgamma[C], dbeta[C].

        dbeta = sum dout,   dgamma = sum dout * xhat                  (sums over N, H, W)
        train:  dx = gamma * inv_std * (dout - dbeta / M - xhat * dgamma / M)
        eval:   dx = gamma * inv_std * dout          (the statistics are constants)
    """
    xhat, gamma, inv_std, train = cache
    check_grad("batchnorm2d_backward", "dout", dout, xhat.shape)
    dbeta = dout.sum(axis=AXES)
    dgamma = (dout * xhat).sum(axis=AXES)
    scale = (gamma * inv_std)[:, None, None]
    if not train:
        return scale * dout, dgamma, dbeta
    M = xhat.shape[0] * xhat.shape[2] * xhat.shape[3]
    dx = scale * (dout - (dbeta / M)[:, None, None] - xhat * (dgamma / M)[:, None, None])
    return dx, dgamma, dbeta
