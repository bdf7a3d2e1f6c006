"""Optimizers (SGD with momentum, Adam), gradient clipping, a finiteness check, learning-rate schedules.

Parameters and gradients are dicts name -> float array (NumPy or CuPy) with the same keys and
shapes. `step(params, grads, lr)` updates the parameter arrays in place, so whoever holds `params`
sees the new values. The learning rate is an argument of every step, so a schedule is just a
function of the step number (`learning_rate`).

Weight decay is not here: the model adds (weight_decay / 2) * sum ||W||^2 to its loss, so the decay
arrives inside the gradients as weight_decay * W. That is PyTorch's `weight_decay` option of SGD
and Adam (L2 coupled to the gradient), not AdamW's decoupled decay.

`state_dict()` is a flat dict of str -> NumPy array or Python int, e.g. {"t": 12, "m/conv1_w":
array, ...}, which `rawcap.checkpoint` can store; `load_state_dict` copies it onto the array module
of the optimizer's parameters, so a state saved from a GPU run resumes on the CPU and vice versa.
"""
import math

from .backend import array_module, ops, to_numpy
from .flat import buffer_of, flatten


class SGD:
    """Stochastic gradient descent with momentum, in PyTorch's convention (dampening 0).

    For each parameter p with gradient g and velocity v (zeros at the start, so the first step
    has v = g, as PyTorch's first step does):
        v <- momentum * v + g
        p <- p - lr * v                       (classical momentum)
        p <- p - lr * (g + momentum * v)      (nesterov=True)
    The learning rate multiplies the velocity rather than sitting inside it (Sutskever et al.
    write v <- momentum * v - lr * g); the two agree while lr is constant. momentum=0 is plain SGD.
    """

    def __init__(self, params, momentum=0.9, nesterov=False):
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov
        self.velocity = _zeros_like("SGD", params)

    def step(self, params, grads, lr):
        """One update of every parameter, in place (equations in the class docstring)."""
        _check_step("SGD", self.velocity, params, grads, lr)
        for name, p in params.items():
            g, v = grads[name], self.velocity[name]
            v *= self.momentum
            v += g
            p -= lr * (g + self.momentum * v if self.nesterov else v)

    def state_dict(self):
        """{"velocity/<name>": NumPy copy of v}."""
        return _export("velocity", self.velocity)

    def load_state_dict(self, state):
        """Restore the velocities from `state_dict()`'s output (ValueError if entries are missing,
        unexpected or misshapen)."""
        _check_names("SGD.load_state_dict", _keys("velocity", self.velocity), state)
        self.velocity = _restore("SGD.load_state_dict", state, "velocity", self.velocity)


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction, as PyTorch's torch.optim.Adam computes it.

    For each parameter p with gradient g, at step t = 1, 2, ... (m and v start at zeros):
        m <- beta1 * m + (1 - beta1) * g                  first moment (running mean of g)
        v <- beta2 * v + (1 - beta2) * g^2                second moment (running mean of g^2)
        p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    i.e. p <- p - lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1^t) and
    v_hat = v / (1 - beta2^t) undoing the pull towards the zeros m and v started from.
    The first step moves every entry by about lr, whatever the scale of its gradient.

    Entries that become subnormal (0 < |p| < the dtype's smallest normal number, 1.2e-38 in
    float32) are set to 0. Under weight decay a weight with no other gradient (the <pad> row of
    the embedding, read at every padded step) shrinks geometrically, Adam rescaling its ever
    smaller gradient, into that range; x86 CPUs compute with subnormals in slow microcode, and
    one such row of word vectors made a whole training step twice as slow (docs/cpu.md).
    """

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8):
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Adam: betas must both be in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"Adam: eps must be > 0, got {eps}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m = _zeros_like("Adam", params)
        self.v = _zeros_like("Adam", params)

    def step(self, params, grads, lr):
        """One update of every parameter, in place (equations in the class docstring)."""
        _check_step("Adam", self.m, params, grads, lr)
        self.t += 1
        buffers = [buffer_of(arrays) for arrays in (params, grads, self.m, self.v)]
        if all(b is not None for b in buffers) and list(params) == list(grads) == list(self.m):
            ops.adam_update(*buffers, lr, self.beta1, self.beta2, self.eps, self.t)   # all at once
            return
        for name, p in params.items():
            ops.adam_update(p, grads[name], self.m[name], self.v[name], lr, self.beta1, self.beta2,
                            self.eps, self.t)

    def state_dict(self):
        """{"t": steps taken, "m/<name>": NumPy copy of m, "v/<name>": NumPy copy of v}."""
        return {"t": self.t, **_export("m", self.m), **_export("v", self.v)}

    def load_state_dict(self, state):
        """Restore t, m and v from `state_dict()`'s output (ValueError if entries are missing,
        unexpected or misshapen)."""
        _check_names("Adam.load_state_dict", ["t", *_keys("m", self.m), *_keys("v", self.v)], state)
        self.t = int(state["t"])
        self.m = _restore("Adam.load_state_dict", state, "m", self.m)
        self.v = _restore("Adam.load_state_dict", state, "v", self.v)


def check_fused_adam_arrays(p, g, m, v):
    """What the one-pass Adam versions (CUDA and CPU) need: g, m, v of p's shape, and all four
    contiguous, since they update p, m and v in place through flat views."""
    for name, a in (("g", g), ("m", m), ("v", v)):
        if a.shape != p.shape:
            raise ValueError(f"adam_update: {name} has shape {a.shape}, the parameter {p.shape}")
    if not all(a.flags.c_contiguous for a in (p, g, m, v)):
        raise ValueError("adam_update: the fused versions update contiguous arrays in place")


def adam_update(p, g, m, v, lr, beta1, beta2, eps, t):
    """Adam's step t of one parameter, in place: p, g, m, v arrays of one shape (equations in
    Adam's docstring). On a GPU, kernels/adam.py does it in one pass over the four arrays."""
    step_size = lr / (1 - beta1 ** t)
    sqrt_correction2 = math.sqrt(1 - beta2 ** t)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    xp = array_module(p)
    p -= step_size * m / (xp.sqrt(v) / sqrt_correction2 + eps)
    p[xp.abs(p) < xp.finfo(p.dtype).tiny] = 0       # subnormals to zero (Adam's docstring)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name, params, **options):
    """The optimizer called `name` ("sgd" or "adam") over `params`; options go to its constructor."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: use {' or '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, **options)


def squared_norm(grads):
    """sum over every gradient array g of sum(g^2), on the gradients' device (0-d; not read):
    one reduction over the buffer when the gradients share one (rawcap.flat)."""
    flat = buffer_of(grads)
    if flat is not None:
        return array_module(flat).vdot(flat, flat)
    return sum(array_module(g).vdot(g, g) for g in grads.values())


def clip_global_norm(grads, max_norm, norm=None):
    """Scale all gradients together so that their joint L2 norm is at most max_norm, in place.

        norm = sqrt(sum over every gradient array g of sum(g^2))
        if norm > max_norm:   g <- g * (max_norm / norm)   for every g
    One factor for all arrays keeps the direction of the full gradient. Returns the norm before
    clipping (worth logging: a norm that is always clipped says the learning rate is too high).
    norm: the norm, if the caller has read it already (check_and_clip).
    """
    if not max_norm > 0:
        raise ValueError(f"clip_global_norm: max_norm must be > 0, got {max_norm}")
    if norm is None:
        norm = math.sqrt(float(squared_norm(grads)))
    if norm > max_norm:
        flat = buffer_of(grads)
        for g in [flat] if flat is not None else grads.values():
            g *= max_norm / norm
    return norm


class NonFiniteError(FloatingPointError):
    """The loss or a gradient holds nan or inf: training has diverged."""


def check_finite(loss, grads):
    """Raise NonFiniteError if the loss or any gradient is not finite, naming the first culprit.

    The loss is checked first, then the gradients in the order of the dict. Call it before
    clipping and stepping, so that a nan never reaches the parameters.
    """
    if not math.isfinite(float(loss)):
        raise NonFiniteError(f"the loss is {float(loss)}")
    for name, g in grads.items():
        xp = array_module(g)
        if not xp.isfinite(g).all():
            raise NonFiniteError(f"the gradient of {name!r} is not finite ({int(xp.isnan(g).sum())} nan "
                                 f"and {int(xp.isinf(g).sum())} inf among {g.size} values)")


def check_and_clip(loss, parts, grads, max_norm=None):
    """A training step's checks and clipping, with one read of device values -> parts as floats.

    loss and parts' values: numbers or 0-d arrays (model.loss_and_grads's); grads: as for
    clip_global_norm. The loss, the parts and the gradients' squared norm (squared_norm) come
    to the host in one copy, then
      - NonFiniteError if the loss or a gradient is not finite: a finite sum of squares means
        every gradient is finite, so only when it is not does check_finite read each gradient
        to name the culprit;
      - clip_global_norm(grads, max_norm) with that norm (max_norm 0 or None: no clipping).
    On a GPU the host waits for the step once here, instead of once per value and per gradient.
    """
    xp = array_module(next(iter(grads.values()), 0.0))
    values = [loss, *parts.values(), squared_norm(grads)]
    on_device = [i for i, v in enumerate(values) if isinstance(v, xp.ndarray)]
    if on_device:
        read = to_numpy(xp.stack([values[i] for i in on_device])).tolist()
        for i, value in zip(on_device, read):
            values[i] = value
    loss, *part_values, norm2 = map(float, values)
    if not (math.isfinite(loss) and math.isfinite(norm2)):
        check_finite(loss, grads)
    if max_norm:
        clip_global_norm(grads, max_norm, math.sqrt(norm2))
    return dict(zip(parts, part_values))


SCHEDULES = ("constant", "step", "cosine")


def learning_rate(step, base_lr, total_steps, schedule="cosine", warmup_steps=0, decay_every=None,
                  decay_factor=0.1, min_lr=0.0):
    """The learning rate for update number `step` (0, 1, ..., total_steps - 1) of a run.

    Linear warm-up, for step < warmup_steps (never 0, so the first update is not wasted):
        lr = base_lr * (step + 1) / warmup_steps
    then, with s = step - warmup_steps updates since the warm-up and S = total_steps - warmup_steps:
        "constant":  lr = base_lr
        "step":      lr = base_lr * decay_factor ** (s // decay_every)
        "cosine":    lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * min(s / S, 1))) / 2
    Cosine is PyTorch's CosineAnnealingLR with T_max = S: base_lr right after the warm-up, min_lr
    at step == total_steps, and min_lr from then on. A warm-up as long as the run or longer is
    allowed (a short trial run with the default warm-up): the rate then never reaches base_lr.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: use {', '.join(SCHEDULES)}")
    if not step >= 0:
        raise ValueError(f"learning_rate: step must be >= 0, got {step}")
    if not base_lr >= 0:
        raise ValueError(f"learning_rate: base_lr must be >= 0, got {base_lr}")
    if not total_steps >= 1:
        raise ValueError(f"learning_rate: total_steps must be >= 1, got {total_steps}")
    if not warmup_steps >= 0:
        raise ValueError(f"learning_rate: warmup_steps must be >= 0, got {warmup_steps}")
    if schedule == "step" and (decay_every is None or decay_every < 1):
        raise ValueError(f"learning_rate: schedule 'step' needs decay_every >= 1, got {decay_every}")
    if schedule == "step" and not decay_factor > 0:
        raise ValueError(f"learning_rate: decay_factor must be > 0, got {decay_factor}")
    if schedule == "cosine" and not 0 <= min_lr <= base_lr:
        raise ValueError(f"learning_rate: min_lr must be in [0, base_lr={base_lr}], got {min_lr}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    s, S = step - warmup_steps, total_steps - warmup_steps
    if schedule == "constant":
        return base_lr
    if schedule == "step":
        return base_lr * decay_factor ** (s // decay_every)
    progress = min(s / S, 1.0) if S > 0 else 1.0
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2


def _zeros_like(owner, params):
    """A zero buffer per parameter, on the parameter's array module and in its dtype, all views
    into one buffer (rawcap.flat)."""
    for name, p in params.items():
        if getattr(getattr(p, "dtype", None), "kind", None) != "f":
            raise ValueError(f"{owner}: params[{name!r}] must be a float array, got {type(p).__name__} "
                             f"of dtype {getattr(p, 'dtype', None)}")
    return flatten(params, fill=0)


def _check_names(where, expected, got):
    """ValueError naming the missing and unexpected keys, if the keys of `got` are not `expected`."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{where}: missing {missing}, unexpected {unexpected}")


def _check_step(owner, buffers, params, grads, lr):
    """ValueError unless lr >= 0 and params and grads have the optimizer's names and shapes."""
    if not lr >= 0:
        raise ValueError(f"{owner}.step: lr must be >= 0, got {lr}")
    for what, arrays in (("params", params), ("grads", grads)):
        _check_names(f"{owner}.step: {what}", buffers, arrays)
        for name, a in arrays.items():
            if a.shape != buffers[name].shape:
                raise ValueError(f"{owner}.step: {what}[{name!r}] has shape {a.shape}, "
                                 f"expected {buffers[name].shape}")


def _keys(prefix, buffers):
    return [f"{prefix}/{name}" for name in buffers]


def _export(prefix, buffers):
    """{prefix/name: a NumPy copy of the buffer} (a copy, so later steps leave it alone)."""
    return {f"{prefix}/{name}": to_numpy(b).copy() for name, b in buffers.items()}


def _restore(where, state, prefix, buffers):
    """Copy state[prefix/name] into each buffer (onto its array module, in its dtype), in place,
    so buffers that share one flat buffer keep sharing it. Every shape is checked first."""
    values = {}
    for name, old in buffers.items():
        key = f"{prefix}/{name}"
        values[name] = to_numpy(state[key])
        if values[name].shape != old.shape:
            raise ValueError(f"{where}: {key!r} has shape {values[name].shape}, expected {old.shape}")
    for name, old in buffers.items():
        old[...] = array_module(old).asarray(values[name], dtype=old.dtype)
    return buffers
