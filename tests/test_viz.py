"""rawcap.viz gradflow: the norms it plots are the gradients that central differences measure,
and the command draws one panel per run."""
import json

import numpy as np
import pytest
from PIL import Image

from rawcap import viz
from rawcap.checkpoint import save_checkpoint
from rawcap.data.cache import open_cache, prepare
from rawcap.data.shapes import generate_shapes
from rawcap.decoder import decode_step, init_decoder
from rawcap.encoder import encode
from rawcap.model import Config, init_params

TINY = dict(vocab_size=7, image_size=8, channels=(3, 4), embed_size=5, hidden_size=6,
            attention_size=4, dropout=0.3, lambda_alpha=0.5)


def tiny_batch(rng, cell):
    config = Config(**TINY, cell=cell)
    params = init_params(config, rng, np.float64)
    for name in params:
        params[name] += 0.3 * rng.standard_normal(params[name].shape)
    images = rng.random((2, 3, 8, 8))
    inputs, targets = rng.integers(0, 7, (3, 5)), rng.integers(0, 7, (3, 5))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    return config, params, (images, inputs, targets, mask, np.array([0, 1, 1]))


def last_word_loss(params, config, batch, t_nudged, nudge_h=None, nudge_c=None):
    """L = sum over captions of -log p(last target), with nudges added to h_t and c_t right after
    step t_nudged: the loss as a function of that step's state, for central differences."""
    images, inputs, targets, mask, caption_image = batch
    feats = encode(params, config, images)[0][caption_image]
    proj, h, c, _ = init_decoder(params, feats)
    last = mask.sum(axis=1) - 1
    loss = 0.0
    for t in range(inputs.shape[1]):
        h, c, _, _ = decode_step(params, config, feats, proj, h, c, params["embed_w"][inputs[:, t]])
        if t == t_nudged:
            h = h + (nudge_h if nudge_h is not None else 0)
            c = c + (nudge_c if nudge_c is not None else 0)
        logits = h @ params["out_w"] + params["out_b"]
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss += sum(-log_p[n, targets[n, t]] for n in range(len(last)) if last[n] == t)
    return loss


def numeric_gradient_norms(params, config, batch, t, which, eps=1e-6):
    B, H = batch[1].shape[0], config.hidden_size
    grad = np.zeros((B, H))
    for n, j in np.ndindex(B, H):
        e = np.zeros((B, H))
        e[n, j] = eps
        plus = last_word_loss(params, config, batch, t, **{which: e})
        minus = last_word_loss(params, config, batch, t, **{which: -e})
        grad[n, j] = (plus - minus) / (2 * eps)
    return np.linalg.norm(grad, axis=1)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradient_flow_norms_are_the_gradients_central_differences_measure(cell):
    """||dL/dh_t|| is the total gradient on h_t (a nudge to h_t after step t changes L through
    every later step); ||dL/dc_t|| is what reaches c_t from step t+1 (a nudge to c_t after step
    t has computed h_t from it changes L only along the cell path)."""
    config, params, batch = tiny_batch(np.random.default_rng(0), cell)
    dh, dc, last = viz.gradient_flow(params, config, *batch)
    np.testing.assert_array_equal(last, [2, 4, 1])
    assert (cell == "rnn") == (dc is None)
    for t in range(5):
        expected = numeric_gradient_norms(params, config, batch, t, "nudge_h")
        np.testing.assert_allclose(dh[:, t], expected, rtol=1e-6, atol=1e-9)
        if cell == "lstm":
            expected = numeric_gradient_norms(params, config, batch, t, "nudge_c")
            np.testing.assert_allclose(dc[:, t], expected, rtol=1e-6, atol=1e-9)
    assert np.all(dh[0, 3:] == 0) and np.all(dh[2, 2:] == 0)      # after the last word: nothing


def test_steps_back_aligns_each_caption_at_its_last_word():
    norms = np.array([[1.0, 2, 3, 0], [5, 6, 7, 8]])
    out = viz.steps_back(norms, np.array([2, 3]))
    np.testing.assert_array_equal(out, [[3, 2, 1, np.nan], [8, 7, 6, 5]])


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """An RNN and an LSTM checkpoint (random weights) of a tiny model on a tiny shapes cache."""
    root = tmp_path_factory.mktemp("viz")
    generate_shapes(root / "shapes", n_images=20, image_size=32, workers=1, progress=False)
    cache = root / "shapes-32.h5"
    prepare(root / "shapes", cache, size=32, progress=False, log=lambda *a: None)
    with open_cache(cache) as f:
        vocab = json.loads(f.attrs["vocab"])["words"]
    paths = []
    for cell in ("rnn", "lstm"):
        config = Config(vocab_size=len(vocab), image_size=32, channels=(4, 8), embed_size=8,
                        hidden_size=16, attention_size=8, cell=cell)
        path = root / f"{cell}.h5"
        save_checkpoint(path, init_params(config, np.random.default_rng(0)), {},
                        dict(config=config.to_dict(), cache=str(cache), vocab=vocab))
        paths.append(path)
    return paths


def test_gradflow_command_draws_one_panel_per_run(two_checkpoints, tmp_path, capsys):
    out = tmp_path / "flow.png"
    argv = ["gradflow", *map(str, two_checkpoints), "--out", str(out), "--split", "train",
            "--batch-size", "8"]
    assert viz.main(argv) == 0
    printed = capsys.readouterr().out
    assert "RNN" in printed and "LSTM" in printed and "median ||dL/dc_t||" in printed
    assert printed.count("median ||dL/dc_t||") == 1                     # the RNN has no cell
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size == (1000, 380)   # two 5-inch panels
    assert list(tmp_path.iterdir()) == [out]                             # no temporary left


def test_gradflow_reports_a_missing_run(tmp_path, capsys):
    assert viz.main(["gradflow", str(tmp_path / "nowhere.h5"), "--out", str(tmp_path / "x.png")]) == 2
    assert "nowhere.h5: no such checkpoint file" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
