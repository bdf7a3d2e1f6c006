"""The decoder op (rawcap.model.decoder_*, version 0: decode_step T times) against its CPU
version (kernels/cpu/decoder.py): the same outputs and gradients on awkward shapes and every
cell/gate option (float64 to 1e-12, float32 to 1e-5 of each output's largest entry), and a
float64 gradient check of the CPU version with respect to every input and parameter."""
import numpy as np
import pytest
from kernel_helpers import assert_same_outputs

from rawcap import gradcheck
from rawcap.backend import implementation, versions
from rawcap.model import Config, decoder_parameters, init_decoder, init_params

CONFIGS = {
    "lstm, f_beta": dict(),
    "lstm, no gate": dict(f_beta=False),
    "rnn, f_beta": dict(cell="rnn"),
    "one location": dict(image_size=2),
}


def decoder_inputs(options, dtype, B, T, seed):
    config = Config(**{**dict(vocab_size=10, image_size=8, channels=(4,), embed_size=5,
                              hidden_size=6, attention_size=3), **options})
    rng = np.random.default_rng(seed)
    params = {k: v.astype(dtype) for k, v in init_params(config, rng).items()}
    feats = rng.standard_normal((B, config.locations, 4)).astype(dtype)
    proj, h, c, _ = init_decoder(params, feats)
    words = rng.standard_normal((B, T, config.embed_size)).astype(dtype)
    return config, params, dict(feats=feats, proj=proj, h=h, c=c, words=words), rng


def run(version, config, params, inputs, dhs, dalphas):
    hs, alphas, cache = implementation("decoder_forward", version)(**inputs, params=params, config=config)
    *dinputs, grads = implementation("decoder_backward", version)(dhs, dalphas, cache)
    return [hs, alphas, *dinputs] + [grads[name] for name in decoder_parameters(config)]


@pytest.mark.parametrize("version", versions("decoder", "cpu")[1:])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("what", CONFIGS)
@pytest.mark.parametrize("B, T, with_dalphas", [(3, 4, True), (1, 1, False), (2, 5, False)])
def test_decoder_matches_version_0(version, dtype, what, B, T, with_dalphas):
    config, params, inputs, rng = decoder_inputs(CONFIGS[what], dtype, B, T, seed=B + T)
    H, L = config.hidden_size, config.locations
    dhs = rng.standard_normal((B, T, H)).astype(dtype)
    dalphas = rng.standard_normal((B, T, L)).astype(dtype) if with_dalphas else None
    assert_same_outputs(run(version, config, params, inputs, dhs, dalphas),
                        run(0, config, params, inputs, dhs, dalphas), dtype,
                        f"decoder v{version} {what} B={B} T={T}")


def decoder_check(version, config, params, inputs):
    """A gradcheck.LayerCheck of decoder version `version` with respect to its inputs (c only
    for the LSTM: the RNN's is [B, 0]) and the parameters it trains (the parameters are
    params' own arrays, which the check perturbs in place)."""
    forward = implementation("decoder_forward", version)
    backward = implementation("decoder_backward", version)
    trained = [n for n in decoder_parameters(config) if config.f_beta or not n.startswith("gate")]
    names = ["feats", "proj", "h"] + (["c"] if config.cell == "lstm" else []) + ["words"] + trained

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


@pytest.mark.parametrize("version", versions("decoder", "cpu")[1:])
@pytest.mark.parametrize("what", ["lstm, f_beta", "lstm, no gate", "rnn, f_beta"])
def test_decoder_gradients(version, what):
    config, params, inputs, rng = decoder_inputs(CONFIGS[what], np.float64, B=2, T=3, seed=7)
    for name, _, error in gradcheck.gradient_errors(decoder_check(version, config, params, inputs), rng):
        assert error < 1e-7, f"decoder v{version} {what} {name}: relative error {error:.1e}"
