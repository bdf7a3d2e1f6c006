"""Adam's update of one parameter (rawcap.optim.adam_update) on the CPU as one Numba loop.

Version 0 makes about ten NumPy passes over the parameter-sized arrays, with temporaries.

version 2   one parallel loop reads p, g, m and v once and writes p, m and v once; the bias
            corrections are computed once outside it. Arithmetic is in float64; an entry that
            becomes subnormal in p's dtype is written as 0, as version 0 does.
"""
import math

import numpy as np
from numba import njit, prange

from rawcap.optim import check_fused_adam_arrays

DEFAULT = 2


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _adam(p, g, m, v, step_size, beta1, beta2, eps, sqrt_correction2, tiny):
    for k in prange(p.shape[0]):
        m_k = beta1 * m[k] + (1.0 - beta1) * g[k]
        v_k = beta2 * v[k] + (1.0 - beta2) * g[k] * g[k]
        m[k] = m_k
        v[k] = v_k
        p_k = p[k] - step_size * m_k / (math.sqrt(v_k) / sqrt_correction2 + eps)
        p[k] = 0.0 if abs(p_k) < tiny else p_k          # (NaN stays NaN)


def adam_update_v2(p, g, m, v, lr, beta1, beta2, eps, t):
    """Adam's step t of one parameter, in place (p, g, m, v contiguous arrays of one shape)."""
    check_fused_adam_arrays(p, g, m, v)
    step_size = lr / (1 - beta1 ** t)
    sqrt_correction2 = math.sqrt(1 - beta2 ** t)
    _adam(*(a.reshape(-1) for a in (p, g, m, v)), step_size, beta1, beta2, eps, sqrt_correction2,
          float(np.finfo(p.dtype).tiny))
