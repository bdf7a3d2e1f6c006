"""The output layer (rawcap/output.py), plain and deep: every input's and weight's gradient
against central differences, and the decoder's log-probabilities read the same layer."""
import numpy as np
import pytest

from rawcap.data.vocab import PAD_ID, START_ID
from rawcap.decode import _log_probs
from rawcap.gradcheck import TOLERANCE, numerical_gradient, relative_error
from rawcap.layers.loss import log_softmax
from rawcap.output import output_backward, output_forward

B, T, L, D, E, H, V = 2, 3, 4, 5, 3, 6, 7


def layer(rng, deep):
    params = {"out_w": rng.standard_normal((E if deep else H, V)), "out_b": rng.standard_normal(V)}
    if deep:
        params["deep_w"], params["deep_b"] = rng.standard_normal((H + D, E)), rng.standard_normal(E)
    alphas = rng.random((B, T, L))
    inputs = dict(hs=rng.standard_normal((B, T, H)), words=rng.standard_normal((B, T, E)),
                  alphas=alphas / alphas.sum(axis=2, keepdims=True),
                  feats=rng.standard_normal((B, L, D)))
    return params, inputs


@pytest.mark.parametrize("deep", [False, True])
def test_every_gradient_matches_central_differences(deep):
    rng = np.random.default_rng(3)
    params, inputs = layer(rng, deep)
    dlogits = rng.standard_normal((B, T, V))

    def run():        # the same dropout mask on every call
        return output_forward(params, **inputs, dropout=0.4, rng=np.random.default_rng(1))

    grads = {}
    got = dict(zip(inputs, output_backward(dlogits, run()[1], grads)))
    assert grads.keys() == params.keys()
    for name, p in params.items():
        error = relative_error(grads[name], numerical_gradient(lambda: run()[0], p, dlogits))
        assert error < TOLERANCE, f"{name}: relative error {error:.1e}"
    for name, x in inputs.items():
        if not deep and name != "hs":
            assert got[name] is None, f"the plain layer reads only hs, not {name}"
            continue
        error = relative_error(got[name], numerical_gradient(lambda: run()[0], x, dlogits))
        assert error < TOLERANCE, f"d{name}: relative error {error:.1e}"


def test_the_decoder_step_reads_the_same_layer():
    """decode's next-word log-probabilities of a step are the log-softmax of the layer's logits
    (<pad> and <start> aside, which decoding never writes)."""
    rng = np.random.default_rng(4)
    params, inputs = layer(rng, deep=True)
    logits = output_forward(params, **inputs)[0]
    t = 1
    got = _log_probs(params, inputs["hs"][:, t], inputs["words"][:, t], inputs["alphas"][:, t],
                     inputs["feats"])
    want = logits[:, t].copy()
    want[:, [PAD_ID, START_ID]] = -np.inf
    np.testing.assert_allclose(got, log_softmax(want), rtol=1e-12)
