"""The argument checks every layer uses: Dims, check_ids, check_grad, check_positive_int."""
import numpy as np
import pytest

from rawcap.layers.checks import Dims, check_grad, check_ids, check_positive_int


def z(*shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


# ---- binding axes ----------------------------------------------------------------------------

def test_first_array_binds_each_axis_and_later_ones_must_agree():
    dims = Dims("op")
    dims.check("x", z(2, 3, 5), "N T D")
    dims.check("w", z(5, 4), "D M")
    assert (dims["N"], dims["T"], dims["D"], dims["M"]) == (2, 3, 5, 4)
    with pytest.raises(ValueError,
                       match=r"^op: b has shape \(3,\), but its M axis should be 4 \(M=4 from w\)$"):
        dims.check("b", z(3), "M")


def test_each_call_has_its_own_bindings():
    Dims("op").check("x", z(2, 3), "N D")
    dims = Dims("op")                              # a fresh Dims knows nothing of the last one
    dims.check("x", z(7, 1), "N D")
    assert dims["N"] == 7


def test_4H_binds_H_to_a_quarter_of_the_axis():
    dims = Dims("op")
    dims.check("a", z(3, 8), "N 4H")
    assert dims["H"] == 2
    dims.check("c", z(3, 2), "N H")
    with pytest.raises(ValueError, match=r"c has shape \(3, 3\), but its H axis should be 2 \(H=2 from a\)"):
        dims.check("c", z(3, 3), "N H")


def test_4H_after_H_must_be_four_times_H():
    dims = Dims("op")
    dims.check("h", z(3, 5), "N H")
    dims.check("b", z(20), "4H")
    with pytest.raises(ValueError, match=r"b has shape \(16,\), but its 4H axis should be 20 \(H=5 from h\)"):
        dims.check("b", z(16), "4H")


def test_4H_that_is_not_a_multiple_of_4_is_rejected():
    with pytest.raises(ValueError, match=r"^op: a has shape \(3, 10\): its 4H axis \(10\) is not a multiple of 4$"):
        Dims("op").check("a", z(3, 10), "N 4H")


# ---- rank and leading axes -------------------------------------------------------------------

def test_wrong_rank_names_the_axes_and_the_shape():
    with pytest.raises(ValueError, match=r"^op: x must have 3 dims \[N, T, D\], got shape \(2, 3\)$"):
        Dims("op").check("x", z(2, 3), "N T D")
    with pytest.raises(ValueError, match=r"x must have 1 dims \[D\], got shape \(\)"):
        Dims("op").check("x", z(), "D")


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 3, 4, 5)])
def test_leading_dots_allow_any_number_of_leading_axes(shape):
    dims = Dims("op")
    dims.check("x", z(*shape), "... D")
    assert dims["D"] == 5
    assert set(dims.sizes) == {"D"}                # the leading axes are not bound


def test_leading_axes_need_not_agree_between_arrays():
    dims = Dims("op")
    dims.check("x", z(2, 3, 5), "... D")
    dims.check("y", z(7, 5), "... D")
    with pytest.raises(ValueError, match=r"y has shape \(7, 4\), but its D axis should be 5 \(D=5 from x\)"):
        dims.check("y", z(7, 4), "... D")


def test_leading_dots_still_need_the_named_axes():
    with pytest.raises(ValueError, match=r"x must have at least 2 dims \[D, M\], got shape \(5,\)"):
        Dims("op").check("x", z(5), "... D M")


@pytest.mark.parametrize("shape", [(), (4,), (2, 3, 4)])
def test_leading_dots_alone_accept_any_shape_even_a_scalar(shape):
    dims = Dims("relu_forward")
    dims.check("x", z(*shape), "...")
    assert dims.sizes == {}


# ---- dtypes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("first, second", [(np.float32, np.float64), (np.float64, np.float32)])
def test_float_arguments_must_share_one_dtype(first, second):
    dims = Dims("op")
    dims.check("x", z(2, 3, dtype=first), "N D")
    dims.check("w", z(3, 4, dtype=first), "D M")
    with pytest.raises(ValueError, match=rf"^op: b is {np.dtype(second)} but x is {np.dtype(first)}: "
                                         r"use one float dtype for all arguments$"):
        dims.check("b", z(4, dtype=second), "M")


def test_int_and_mask_arguments_do_not_take_part_in_the_float_dtype():
    dims = Dims("op")
    dims.check("ids", z(2, 3, dtype=np.int32), "N T", kind="int")
    dims.check("mask", z(2, 3, dtype=np.float64), "N T", kind="mask")
    dims.check("logits", z(2, 3, 5, dtype=np.float32), "N T V")   # the first float fixes float32
    with pytest.raises(ValueError, match="w is float64 but logits is float32"):
        dims.check("w", z(5), "V")


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_int_kind_accepts_every_integer_dtype(dtype):
    Dims("op").check("ids", z(2, dtype=dtype), "N", kind="int")


@pytest.mark.parametrize("dtype", [np.float32, np.bool_])
def test_int_kind_rejects_floats_and_bools(dtype):
    with pytest.raises(ValueError, match=rf"^op: ids must hold integers, got dtype {np.dtype(dtype)}$"):
        Dims("op").check("ids", z(2, dtype=dtype), "N", kind="int")


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int64, np.float32, np.float64])
def test_mask_kind_accepts_bool_int_and_float(dtype):
    Dims("op").check("mask", z(2, 3, dtype=dtype), "N T", kind="mask")


@pytest.mark.parametrize("dtype", [np.complex128, "U1", object])
def test_mask_kind_rejects_everything_else(dtype):
    with pytest.raises(ValueError, match=r"^op: mask must be bool or numeric, got dtype "):
        Dims("op").check("mask", z(2, 3, dtype=dtype), "N T", kind="mask")


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex128])
def test_float_kind_rejects_non_floats(dtype):
    with pytest.raises(ValueError, match=rf"^op: x must be float32 or float64, got dtype {np.dtype(dtype)}$"):
        Dims("op").check("x", z(2, dtype=dtype), "N")


@pytest.mark.parametrize("value", [[1.0, 2.0], 3.0, None])
def test_non_arrays_are_rejected_by_type_name(value):
    with pytest.raises(ValueError, match=rf"^op: x must be an array, got {type(value).__name__}$"):
        Dims("op").check("x", value, "N")


# ---- ids, upstream gradients, integer options ------------------------------------------------

def test_check_ids():
    check_ids("op", "ids", np.array([[0, 4], [2, 1]]), 5)
    check_ids("op", "ids", np.zeros((2, 0), dtype=int), 5)       # no ids: nothing to check
    with pytest.raises(ValueError, match=r"^op: ids must lie in \[0, 5\), got values in \[0, 5\]$"):
        check_ids("op", "ids", np.array([0, 5]), 5)
    with pytest.raises(ValueError, match=r"got values in \[-2, 3\]"):
        check_ids("op", "ids", np.array([3, -2]), 5)


def test_check_grad():
    check_grad("op_backward", "dout", z(2, 3), (2, 3))
    with pytest.raises(ValueError, match=r"^op_backward: dout must have the forward output's shape "
                                         r"\(2, 3\), got \(3, 2\)$"):
        check_grad("op_backward", "dout", z(3, 2), (2, 3))
    with pytest.raises(ValueError, match=r"shape \(2, 3\), got list$"):
        check_grad("op_backward", "dout", [[0.0] * 3] * 2, (2, 3))


@pytest.mark.parametrize("value", [1, 3, np.int64(2)])
def test_check_positive_int_accepts(value):
    check_positive_int("conv2d_forward", "stride", value)


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "2", None])
def test_check_positive_int_rejects(value):
    with pytest.raises(ValueError, match=rf"^conv2d_forward: stride must be an integer >= 1, got {value!r}$"):
        check_positive_int("conv2d_forward", "stride", value)


def test_check_positive_int_minimum():
    check_positive_int("conv2d_forward", "pad", 0, minimum=0)
    with pytest.raises(ValueError, match="pad must be an integer >= 0, got -1"):
        check_positive_int("conv2d_forward", "pad", -1, minimum=0)
