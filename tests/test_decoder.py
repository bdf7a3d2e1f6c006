"""The decoder op (rawcap.decoder.decoder_*, version 0: decode_step T times) against its grouped
versions (kernels/decoder_steps.py: the CPU one, and the CUDA one under the simulator or on a
GPU): the same outputs and gradients on awkward shapes and every cell/gate option (float64 to
1e-12, float32 to 1e-5 of each output's largest entry), and a float64 gradient check of each
with respect to every input and parameter."""
import numpy as np
import pytest
from kernel_helpers import assert_same_outputs, kernel_xp

from rawcap import gradcheck
from rawcap.backend import array_module, device_of, implementation, versions
from rawcap.decoder import decoder_parameters, init_decoder
from rawcap.model import Config, init_params

CONFIGS = {
    "lstm, f_beta": dict(),
    "lstm, no gate": dict(f_beta=False),
    "rnn, f_beta": dict(cell="rnn"),
    "one location": dict(image_size=2),
}


CPU_VERSIONS = versions("decoder", "cpu")[1:]
CUDA_VERSIONS = versions("decoder", "cuda")[1:]


def cases(shapes):
    """(version, B, T, with_dalphas): every shape for the CPU versions; the CUDA versions, which
    the simulator runs a thread at a time, on the first (one step; marked gpu; the recurrence
    through T steps is test_cuda_decoder_through_time's)."""
    return ([(v, *shape) for v in CPU_VERSIONS for shape in shapes]
            + [pytest.param(v, *shapes[0], marks=pytest.mark.gpu) for v in CUDA_VERSIONS])


def decoder_inputs(version, options, dtype, B, T, seed):
    """config, params, the forward's inputs (on the version's arrays), rng."""
    config = Config(**{**dict(vocab_size=10, image_size=8, channels=(4,), embed_size=5,
                              hidden_size=6, attention_size=3), **options})
    rng = np.random.default_rng(seed)
    params = {k: v.astype(dtype) for k, v in init_params(config, rng).items()}
    feats = rng.standard_normal((B, config.locations, config.channels[-1])).astype(dtype)
    proj, h, c, _ = init_decoder(params, feats)
    words = rng.standard_normal((B, T, config.embed_size)).astype(dtype)
    xp = kernel_xp() if device_of("decoder", version) == "cuda" else np
    params = {k: xp.asarray(v) for k, v in params.items()}
    inputs = {k: xp.asarray(v) for k, v in dict(feats=feats, proj=proj, h=h, c=c, words=words).items()}
    return config, params, inputs, rng


def run(version, config, params, inputs, dhs, dalphas):
    hs, alphas, cache = implementation("decoder_forward", version)(**inputs, params=params, config=config)
    *dinputs, grads = implementation("decoder_backward", version)(dhs, dalphas, cache)
    return [hs, alphas, *dinputs] + [grads[name] for name in decoder_parameters(config)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("what", CONFIGS)
@pytest.mark.parametrize("version, B, T, with_dalphas", cases([(1, 1, False), (2, 3, True), (3, 5, False)]))
def test_decoder_matches_version_0(version, dtype, what, B, T, with_dalphas):
    config, params, inputs, rng = decoder_inputs(version, CONFIGS[what], dtype, B, T, seed=B + T)
    H, L = config.hidden_size, config.locations
    xp = array_module(inputs["feats"])
    dhs = xp.asarray(rng.standard_normal((B, T, H)).astype(dtype))
    dalphas = xp.asarray(rng.standard_normal((B, T, L)).astype(dtype)) if with_dalphas else None
    assert_same_outputs(run(version, config, params, inputs, dhs, dalphas),
                        run(0, config, params, inputs, dhs, dalphas), dtype,
                        f"decoder v{version} {what} B={B} T={T}")


@pytest.mark.gpu
@pytest.mark.parametrize("version", CUDA_VERSIONS)
def test_cuda_decoder_through_time(version):
    test_decoder_matches_version_0(version=version, dtype=np.float32, what="lstm, f_beta", B=2, T=3,
                                   with_dalphas=True)


def decoder_check(version, config, params, inputs, only=None):
    """A gradcheck.LayerCheck of decoder version `version` with respect to its inputs (c only
    for the LSTM: the RNN's is [B, 0]) and the parameters it trains (the parameters are
    params' own arrays, which the check perturbs in place)."""
    forward = implementation("decoder_forward", version)
    backward = implementation("decoder_backward", version)
    trained = [n for n in decoder_parameters(config) if config.f_beta or not n.startswith("gate")]
    names = ["feats", "proj", "h"] + (["c"] if config.cell == "lstm" else []) + ["words"] + trained
    names = [name for name in names if only is None or name in only]

    def forward_arrays(*arrays):
        given = {**inputs, **dict(zip(names, arrays))}
        return forward(given["feats"], given["proj"], given["h"], given["c"], given["words"],
                       params, config)

    def backward_arrays(dhs, dalphas, cache):
        dfeats, dproj, dh, dc, dwords, grads = backward(dhs, dalphas, cache)
        found = dict(feats=dfeats, proj=dproj, h=dh, c=dc, words=dwords, **grads)
        return tuple(found[name] for name in names)

    args = {name: inputs[name] if name in inputs else params[name] for name in names}
    return gradcheck.LayerCheck("decoder", forward_arrays, backward_arrays, args, tuple(names))


@pytest.mark.parametrize("version", [0] + CPU_VERSIONS)
@pytest.mark.parametrize("what", ["lstm, f_beta", "lstm, no gate", "rnn, f_beta"])
def test_decoder_gradients(version, what):
    config, params, inputs, rng = decoder_inputs(version, CONFIGS[what], np.float64, B=2, T=3, seed=7)
    for name, _, error in gradcheck.gradient_errors(decoder_check(version, config, params, inputs), rng):
        assert error < 1e-7, f"decoder v{version} {what} {name}: relative error {error:.1e}"


@pytest.mark.gpu
@pytest.mark.parametrize("version", CUDA_VERSIONS)
def test_cuda_decoder_gradients(version):
    """Under the simulator, at sizes small enough for central differences (which run the
    kernels hundreds of times) that still have every part: two steps, four locations, the gate;
    every input, and a parameter behind each kernel (gate, attention, the LSTM's gates and
    recurrence); the other weights' gradients are the same products (test above)."""
    if kernel_xp() is not np:
        pytest.skip("gradient checks run on NumPy float64 arrays: under the simulator")
    options = dict(image_size=4, channels=(2,), embed_size=2, hidden_size=2, attention_size=2)
    config, params, inputs, rng = decoder_inputs(version, options, np.float64, B=1, T=2, seed=3)
    only = ["feats", "proj", "h", "c", "words", "gate_w", "gate_b", "att_v", "lstm_b", "lstm_wh"]
    check = decoder_check(version, config, params, inputs, only)
    for name, _, error in gradcheck.gradient_errors(check, rng):
        assert error < 1e-7, f"decoder v{version} {name}: relative error {error:.1e}"
