"""exp, tanh and sigmoid for the CPU versions' Numba loops, vectorisable in float32.

Numba calls libm for np.exp and np.tanh one element at a time (this Numba has no SVML), so a
loop that calls them does not vectorise and runs several times slower than NumPy's vectorised
ufuncs. The float32 functions here are plain arithmetic that LLVM turns into SIMD code:

    exp_float32    Cephes' expf: n = round(x / ln 2), r = x - n ln 2 (in two parts, Cody and
                   Waite), exp(r) by a degree-6 polynomial, times 2^n made from its bits
                   (within 2 ulp; x clamped to float32's normal range)
    tanh_float32   Eigen's rational approximation (within 3e-7)
    sigmoid        in float32 (1 + tanh_float32(x / 2)) / 2, within 2e-7 (1 / (1 + exp_float32(-x))
                   did not vectorise)

`exp`, `tanh` and `sigmoid` pick these for float32 and the exact libm functions for float64
(the gradient checks run in float64) when Numba compiles the caller for its dtype.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# Every fast-math flag but reassociation: exp_float32's two-part subtraction of n ln 2 must run
# in the order written (reassociated, it would be x - n * ln 2 in one rounded step).
NO_REASSOCIATION = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of the integer `bits`."""
    if not isinstance(bits, types.Integer) or bits.bitwidth < 32:
        return None

    def codegen(context, builder, signature, args):
        low = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())
    return types.float32(bits), codegen


@njit(cache=True, fastmath=NO_REASSOCIATION, error_model="numpy")
def exp_float32(x):
    """exp(x) in float32 arithmetic alone; x is clamped to [-87.34, 88.38], where 2^n stays a
    normal float32 (exp(-87.34) is the smallest normal float32, exp(88.38) = 2.4e38)."""
    x = min(max(x, np.float32(-87.33654)), np.float32(88.3762626647949))
    n = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))     # float32
    r = x - n * np.float32(0.693359375)             # exact: 0.693359375 has 9 significant bits
    r = r - n * np.float32(-2.12194440e-4)          # ln 2 - 0.693359375
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    return p * _float32_from_bits((np.int64(n) + 127) << 23)


@njit(cache=True, fastmath=True, error_model="numpy")
def tanh_float32(x):
    """tanh(x) to within 3e-7, in float32 arithmetic alone: Eigen's rational approximation
    p(x) / q(x) (odd degree 13 over even degree 6), clamped at |x| = 7.905, where tanh is 1 to
    float32 precision."""
    c = np.float32(7.90531110763549805)
    x = min(max(x, -c), c)
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = x2 * p + np.float32(-8.60467152213735e-11)
    p = x2 * p + np.float32(5.12229709037114e-08)
    p = x2 * p + np.float32(1.48572235717979e-05)
    p = x2 * p + np.float32(6.37261928875436e-04)
    p = x2 * p + np.float32(4.89352455891786e-03)
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = x2 * q + np.float32(2.26843463243900e-03)
    q = x2 * q + np.float32(4.89352518554385e-03)
    return x * p / q


def exp(x):
    """exp_float32 for float32, the exact exp for float64 (in Numba-compiled callers)."""
    return np.exp(x)


def tanh(x):
    """tanh_float32 for float32, the exact tanh for float64 (in Numba-compiled callers)."""
    return np.tanh(x)


def sigmoid(x):
    """1 / (1 + exp(-x)): (1 + tanh_float32(x / 2)) / 2 for float32 (0 below x = -15.8, 1 above
    15.8), the exact sigmoid for float64 (in Numba-compiled callers)."""
    return 1 / (1 + np.exp(-x))


@overload(exp)
def _exp_for(x):
    if x == types.float32:
        return lambda x: exp_float32(x)
    return lambda x: np.exp(x)


@overload(tanh)
def _tanh_for(x):
    if x == types.float32:
        return lambda x: tanh_float32(x)
    return lambda x: np.tanh(x)


@overload(sigmoid)
def _sigmoid_for(x):
    if x == types.float32:
        return lambda x: np.float32(0.5) + np.float32(0.5) * tanh_float32(np.float32(0.5) * x)
    return lambda x: 1.0 / (1.0 + np.exp(-x))
