"""Adam's update of one parameter (rawcap.optim.adam_update) as one fused kernel.

Version 0 makes about ten passes over the parameter-sized arrays (m *= beta1, m += ..., v ...,
sqrt, divide, subtract), each reading and writing memory. The update is pure streaming, so the
fused version reads p, g, m and v once and writes p, m and v once: 7 accesses per entry.

version 1   one thread per entry; the bias corrections are computed once on the host and
            handed to the kernel in the parameter's dtype, so the arithmetic is in that dtype.
            An entry that becomes subnormal is written as 0, as version 0 does.
"""
import math

import numpy as np
from numba import cuda

from rawcap.optim import check_fused_adam_arrays

from .launch import THREADS, blocks_for, launch

DEFAULT = 1


@cuda.jit
def _adam(p, g, m, v, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2, eps,
          sqrt_correction2, tiny):
    k = cuda.grid(1)
    if k >= p.shape[0]:
        return
    m_k = beta1 * m[k] + one_minus_beta1 * g[k]
    v_k = beta2 * v[k] + one_minus_beta2 * g[k] * g[k]
    m[k] = m_k
    v[k] = v_k
    p_k = p[k] - step_size * m_k / (math.sqrt(v_k) / sqrt_correction2 + eps)
    p[k] = 0 if abs(p_k) < tiny else p_k            # (NaN stays NaN)


def adam_update_v1(p, g, m, v, lr, beta1, beta2, eps, t):
    """Adam's step t of one parameter, in place (p, g, m, v contiguous arrays of one shape)."""
    check_fused_adam_arrays(p, g, m, v)
    scalars = (lr / (1 - beta1 ** t), beta1, 1 - beta1, beta2, 1 - beta2, eps,
               math.sqrt(1 - beta2 ** t), np.finfo(p.dtype).tiny)  # step size ... tiny
    flat = [a.reshape(-1) for a in (p, g, m, v)]
    launch(_adam, blocks_for(p.size), THREADS, *flat, *(p.dtype.type(s) for s in scalars))
