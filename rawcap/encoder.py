"""The encoder: K conv blocks turn images into the L feature vectors the decoder attends to.

    x = (images - pixel_mean) / pixel_std                  per channel
    block k:  x <- conv3x3 pad 1 (x) -> [batchnorm] -> ReLU -> maxpool 2x2
              Config.residual: then x <- ReLU(x + BN(conv3x3(x))), before the maxpool
              (Config.residual_after_pool: after it, at a quarter of the pixels),
              Config.residual_units times in a row
    feats[B_img, L, D]: the last block's [D, S / 2^K, S / 2^K] map, one row per location
              (Config.final_pool False: the last block skips its maxpool, [D, S / 2^(K-1), ...],
              a grid twice as fine, as Show-Attend-Tell's 14 x 14)

encode runs it forward, encode_backward in reverse; both are called by rawcap.model.
"""
from functools import lru_cache

from . import layers as nn
from .backend import array_module, ops


@lru_cache(maxsize=16)
def pixel_statistics(xp, mean, std, dtype):
    """The per-channel mean and std as [3, 1, 1] arrays of module xp: made once per device and
    dtype (on a GPU each new one is a copy from the host, which waits for the GPU)."""
    return tuple(xp.asarray(values, dtype=dtype)[:, None, None] for values in (mean, std))


def encode(params, config, images, train=False):
    """images[B_img, 3, S, S] in [0, 1] -> feats[B_img, L, D], cache.

    train: batchnorm normalises with the batch's statistics (and the cache holds the updated
    running ones, see `running_statistics`); otherwise with the running statistics, so each
    image's features do not depend on the rest of its batch. No effect without batchnorm."""
    xp = array_module(images)
    if config.blind:        # the features are zeros whatever the pixels: skip the encoder
        side = config.image_size >> config.pools        # one halving per maxpool, rounding down
        return xp.zeros((len(images), side * side, config.channels[-1]), images.dtype), None
    mean, std = pixel_statistics(xp, config.pixel_mean, config.pixel_std, images.dtype)
    x, caches = (images - mean) / std, []
    for k in range(len(config.channels)):
        x, conv = ops.conv2d_forward(x, params[f"conv{k}_w"], None, pad=1)
        bn = None
        if config.batchnorm:
            x, bn = batchnorm_forward(x, params, f"bn{k}", config, train)
            x, relu = nn.relu_forward(x)
        else:
            x, relu = ops.bias_relu_forward(x, params[f"conv{k}_b"])       # conv bias + ReLU
        res = []
        if config.residual and not config.residual_after_pool:
            x, res = residual_units_forward(x, params, k, config, train)
        pool = None
        if k < config.pools:                # every block's but the last's without final_pool
            x, pool = ops.maxpool2d_forward(x, 2, 2)
        if config.residual_after_pool:
            x, res = residual_units_forward(x, params, k, config, train)
        caches.append((conv, bn, relu, res, pool))
    N, D = x.shape[:2]
    feats = x.reshape(N, D, -1).transpose(0, 2, 1)
    return feats, (caches, x.shape)


def residual_unit_names(config, k):
    """The names of block k's residual units' parameters, in order (none without residual):
    res{k} for the first (the name it had when a block held one unit, so older checkpoints
    load), res{k}_{u} for u = 1, 2, ..."""
    units = config.residual_units if config.residual else 0
    return [f"res{k}" if u == 0 else f"res{k}_{u}" for u in range(units)]


def residual_units_forward(x, params, k, config, train):
    """Block k's residual units, one after the other -> out, [each unit's cache]."""
    caches = []
    for name in residual_unit_names(config, k):
        x, cache = residual_forward(x, params, name, config, train)
        caches.append(cache)
    return x, caches


def residual_forward(x, params, name, config, train):
    """The residual unit `name`: x -> ReLU(x + z), z = BN(conv3x3(x)) (the unit learns z)
    -> out, cache."""
    z, conv = ops.conv2d_forward(x, params[f"{name}_w"], None, pad=1)
    z, bn = batchnorm_forward(z, params, f"{name}_bn", config, train)
    out, relu = nn.relu_forward(x + z)
    return out, (name, conv, bn, relu)


def residual_units_backward(dout, caches, grads):
    """dout -> dx through a block's residual units, the last one first."""
    for cache in reversed(caches):
        dout = residual_backward(dout, cache, grads)
    return dout


def residual_backward(dout, cache, grads):
    """dout -> dx: the sum x + z sends the gradient to x directly and through z."""
    name, conv, bn, relu = cache
    dx = nn.relu_backward(dout, relu)
    dz = batchnorm_backward(dx, bn, grads)
    dz, grads[f"{name}_w"], _ = ops.conv2d_backward(dz, conv)
    return dx + dz


def batchnorm_forward(x, params, name, config, train):
    """The batchnorm layer whose parameters are name_w, name_b, name_running_mean/var
    -> out, (name, its cache, the updated running statistics)."""
    out, statistics, cache = ops.batchnorm2d_forward(
        x, params[f"{name}_w"], params[f"{name}_b"], params[f"{name}_running_mean"],
        params[f"{name}_running_var"], train=train, momentum=config.bn_momentum)
    return out, (name, cache, statistics)


def batchnorm_backward(dout, bn, grads):
    """dout -> dx, with the gradients of batchnorm_forward's name_w and name_b put into grads."""
    name, cache, _ = bn
    dx, grads[f"{name}_w"], grads[f"{name}_b"] = ops.batchnorm2d_backward(dout, cache)
    return dx


def running_statistics(cache):
    """The updated running statistics from encode's cache -> {NAME_running_mean/var: array}
    for every batchnorm layer (empty without batchnorm; in eval mode the values that went in)."""
    if cache is None:                       # blind
        return {}
    updated = {}
    for _, bn, _, res, _ in cache[0]:
        for layer in (bn, *(unit_bn for _, _, unit_bn, _ in res)):
            if layer is not None:
                name, _, statistics = layer
                updated[f"{name}_running_mean"], updated[f"{name}_running_var"] = statistics
    return updated


def encode_backward(dfeats, cache, config, grads):
    """dfeats[B_img, L, D] -> the conv parameters' gradients, added into `grads`
    (blind: none, they stay zero)."""
    if config.blind:
        return
    caches, shape = cache
    dx = dfeats.transpose(0, 2, 1).reshape(shape)
    for k in reversed(range(len(caches))):
        conv, bn, relu, res, pool = caches[k]
        if config.residual_after_pool:
            dx = residual_units_backward(dx, res, grads)
        if pool is not None:
            dx = ops.maxpool2d_backward(dx, pool)
        if config.residual and not config.residual_after_pool:
            dx = residual_units_backward(dx, res, grads)
        if bn is not None:
            dx = nn.relu_backward(dx, relu)
            dx = batchnorm_backward(dx, bn, grads)
        else:
            dx, grads[f"conv{k}_b"] = ops.bias_relu_backward(dx, relu)
        if k == 0:                  # the images need no gradient: skip dx (its GEMM, col2im)
            grads["conv0_w"], _ = ops.conv2d_params_backward(dx, conv)
        else:
            dx, grads[f"conv{k}_w"], _ = ops.conv2d_backward(dx, conv)
