"""End to end: the command lines train, evaluate, caption and bench, on a tiny shapes dataset.

Everything is tiny so that the file runs in seconds: 50 images of 32 x 32 (40 train, 5 val,
5 test), a model with channels 4,8 and E=8, H=16, A=8, batches of 8 images (5 per epoch).
One 2-epoch run ("run A") is trained once per session; the tests that only read a run share it.
train.py puts its cache under ./data, so every training test works in the session's directory
(the cache is built there once) and writes its own run directory under tmp_path.
"""
import csv
import importlib.util
import json
import math
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from rawcap import bench, caption, evaluate, ship, train
from rawcap.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from rawcap.data.batches import CaptionBatches
from rawcap.data.cache import open_cache
from rawcap.data.images import load_image
from rawcap.data.vocab import Vocabulary
from rawcap.decode import decode
from rawcap.data.shapes import generate_shapes
from rawcap.model import Config, init_params, loss_and_grads
from rawcap.optim import Adam

BATCHES = 5                 # 40 train images / batches of 8: one epoch
TINY = ["--image-size", "32", "--channels", "4,8", "--embed-size", "8", "--hidden-size", "16",
        "--attention-size", "8", "--batch-size", "8", "--quiet"]
LOG_COLUMNS = ["epoch", "step", "train_loss", "val_bleu1", "val_bleu2", "val_bleu3", "val_bleu4",
               "val_rouge_l", "val_cider", "lr", "seconds", "images_per_s"]
SCORES = ["bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider"]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """The session's working directory, holding the tiny dataset in shapes/."""
    root = tmp_path_factory.mktemp("work")
    generate_shapes(root / "shapes", n_images=50, image_size=32, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def run_a(workdir):
    """Run A: 2 epochs, test beam 3, trained once. -> its exit status and run directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        status = train.main(TINY + ["--data-dir", "shapes", "--epochs", "2", "--test-beam", "3",
                                    "--out", str(workdir / "runs" / "A")])
    return SimpleNamespace(status=status, path=workdir / "runs" / "A")


@pytest.fixture
def in_workdir(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    return workdir


def train_args(out, *more):
    return TINY + ["--data-dir", "shapes", "--epochs", "2", "--out", str(out), *more]


def on_loss_call(monkeypatch, action):
    """Route train.py's calls of loss_and_grads through action(n, *args, **kwargs), n = 1, 2, ..."""
    calls = iter(range(1, 10 ** 6))
    monkeypatch.setattr(train, "loss_and_grads",
                        lambda *args, **kwargs: action(next(calls), *args, **kwargs))


def read_log(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


# 1. A whole run ------------------------------------------------------------------------------

def test_train_writes_a_complete_run_directory(run_a, workdir):
    assert run_a.status == 0
    config = json.loads((run_a.path / "config.json").read_text())
    assert config["model"]["channels"] == [4, 8] and config["train"]["epochs"] == 2
    assert config["model"]["resize"] == "crop"

    columns, rows = read_log(run_a.path)
    assert columns == LOG_COLUMNS
    assert [(r["epoch"], r["step"]) for r in rows] == [("1", str(BATCHES)), ("2", str(2 * BATCHES))]
    assert all(math.isfinite(float(r["train_loss"])) for r in rows)

    with Image.open(run_a.path / "loss.png") as png:
        assert png.format == "PNG"
        png.verify()
    assert load_checkpoint(run_a.path / "last.h5")[2]["epoch"] == 2
    assert load_checkpoint(run_a.path / "best.h5")[2]["epoch"] in (1, 2)

    metrics = json.loads((run_a.path / "metrics.json").read_text())
    assert all(isinstance(metrics[k], float) for k in SCORES)
    for words in ("test split", "5 references", "beam 3"):
        assert words in metrics["protocol"]

    test_images = (workdir / "shapes" / "Flickr_8k.testImages.txt").read_text().split()
    captions = json.loads((run_a.path / "captions_test.json").read_text())
    assert sorted(captions) == sorted(test_images)
    assert all(isinstance(c, str) for c in captions.values())


# 2. --resume -----------------------------------------------------------------------------------

def interrupt(at_call, after_step_started):
    """Ctrl-C at loss_and_grads call `at_call`: before it runs, or once it has run (its dropout
    masks drawn) but before the optimizer step."""
    def action(n, *args, **kwargs):
        if n == at_call and not after_step_started:
            raise KeyboardInterrupt
        result = loss_and_grads(*args, **kwargs)
        if n == at_call:
            raise KeyboardInterrupt
        return result
    return action


@pytest.mark.parametrize("at_call, after_step_started", [
    (3, False),                     # epoch 1, batch 3
    (BATCHES + 3, False),           # epoch 2, batch 3
    (BATCHES + 3, True),            # epoch 2, batch 3, after the dropout masks were drawn
], ids=["epoch1-before-step", "epoch2-before-step", "epoch2-after-dropout"])
def test_resume_continues_bit_for_bit(run_a, in_workdir, tmp_path, monkeypatch, at_call,
                                      after_step_started):
    run_b = tmp_path / "B"
    with monkeypatch.context() as mp:
        on_loss_call(mp, interrupt(at_call, after_step_started))
        assert train.main(train_args(run_b)) == 130
    assert (run_b / "last.h5").is_file()

    assert train.main(["--resume", str(run_b), "--quiet"]) == 0
    params_a, optimizer_a, _ = load_checkpoint(run_a.path / "last.h5")
    params_b, optimizer_b, _ = load_checkpoint(run_b / "last.h5")
    assert params_a.keys() == params_b.keys() and optimizer_a.keys() == optimizer_b.keys()
    for name in params_a:
        assert np.array_equal(params_a[name], params_b[name]), name
    for key in optimizer_a:
        assert np.array_equal(optimizer_a[key], optimizer_b[key]), key
    losses = [[row["train_loss"] for row in read_log(run)[1]] for run in (run_a.path, run_b)]
    assert losses[0] == losses[1]


# 3. A non-finite loss -----------------------------------------------------------------------------

def test_a_nan_loss_stops_with_status_3_and_leaves_best_alone(in_workdir, tmp_path, monkeypatch,
                                                              capsys):
    best, best_after_epoch_1 = tmp_path / "run" / "best.h5", []

    def nan_in_epoch_2(n, *args, **kwargs):
        loss, parts, grads = loss_and_grads(*args, **kwargs)
        if n == BATCHES + 2:
            best_after_epoch_1.append(best.read_bytes())
            return float("nan"), dict(parts, ce=float("nan")), grads
        return loss, parts, grads

    on_loss_call(monkeypatch, nan_in_epoch_2)
    assert train.main(train_args(tmp_path / "run")) == 3
    out, err = capsys.readouterr()
    assert "error:" in out + err and "nan" in out + err
    assert best.read_bytes() == best_after_epoch_1[0]
    assert load_checkpoint(tmp_path / "run" / "last.h5")[2]["epoch"] == 1
    assert not (tmp_path / "run" / "metrics.json").exists()


# 4. --init-from ---------------------------------------------------------------------------------

def test_init_from_starts_a_new_run_from_the_checkpoint_weights(run_a, in_workdir, tmp_path,
                                                                monkeypatch):
    source = run_a.path / "best.h5"
    source_bytes, source_log = source.read_bytes(), read_log(run_a.path)
    weights, _, _ = load_checkpoint(source)
    first_step = {}

    def spy(n, params, *rest, **kwargs):
        if n == 1:
            first_step.update({k: np.array(v) for k, v in params.items()})
        return loss_and_grads(params, *rest, **kwargs)

    on_loss_call(monkeypatch, spy)
    run_c = tmp_path / "C"
    assert train.main(TINY + ["--data-dir", "shapes", "--epochs", "1", "--init-from", str(source),
                              "--out", str(run_c)]) == 0
    assert first_step.keys() == weights.keys()
    assert all(np.array_equal(first_step[k], weights[k]) for k in weights)

    # A new run: its own directory, epochs and steps counted from 0, a fresh optimizer.
    assert [(r["epoch"], r["step"]) for r in read_log(run_c)[1]] == [("1", str(BATCHES))]
    _, optimizer, meta = load_checkpoint(run_c / "last.h5")
    assert meta["epoch"] == 1 and optimizer["t"] == BATCHES
    assert source.read_bytes() == source_bytes and read_log(run_a.path) == source_log


def test_init_from_a_checkpoint_of_another_shape_is_an_error(run_a, in_workdir, tmp_path, capsys):
    argv = TINY + ["--data-dir", "shapes", "--epochs", "1", "--init-from",
                   str(run_a.path / "best.h5"), "--out", str(tmp_path / "D")]
    argv[argv.index("--hidden-size") + 1] = "12"
    assert train.main(argv) == 2
    assert "needs" in capsys.readouterr().err and not (tmp_path / "D" / "last.h5").exists()


def test_cell_rnn_trains_saves_its_cell_and_captions(in_workdir, tmp_path, capsys):
    """--cell rnn: a run whose checkpoints say cell "rnn", hold the RNN's weights and no LSTM's,
    and that caption (a command that knows only the checkpoint) decodes with the RNN."""
    run = tmp_path / "R"
    assert train.main(TINY + ["--data-dir", "shapes", "--epochs", "1", "--cell", "rnn",
                              "--out", str(run)]) == 0
    params, _, meta = load_checkpoint(run / "best.h5")
    assert meta["config"]["cell"] == "rnn"
    assert json.loads((run / "config.json").read_text())["model"]["cell"] == "rnn"
    assert "rnn_wh" in params and not any(k.startswith("lstm_") or k.startswith("init_c") for k in params)
    capsys.readouterr()
    image = in_workdir / "shapes" / "images" / "shapes_00045.jpg"
    assert caption.main([str(run), str(image)]) == 0
    assert parse_captions(capsys.readouterr().out).keys() == {str(image)}


def test_train_on_val_adds_the_val_images_and_scores_test_with_last(in_workdir, tmp_path, capsys):
    """--train-on-val: an epoch visits the 40 train and 5 val images (6 batches of 8, not 5); val
    can no longer choose, so no best.h5 is kept, and the test scores are last.h5's, the model a
    command given the run directory uses."""
    run = tmp_path / "V"
    assert train.main(TINY + ["--data-dir", "shapes", "--epochs", "1", "--train-on-val",
                              "--out", str(run)]) == 0
    assert "training on train and val together (45 images)" in capsys.readouterr().out
    assert read_log(run)[1][0]["step"] == "6"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["checkpoint"] == "last.h5"
    assert json.loads((run / "config.json").read_text())["train"]["train_on_val"] is True
    assert not (run / "best.h5").exists()
    assert find_checkpoint(run) == run / "last.h5"          # what evaluate, caption, ship read
    capsys.readouterr()
    assert caption.main([str(run), str(in_workdir / "shapes" / "images" / "shapes_00045.jpg")]) == 0
    assert "best val BLEU-4" not in capsys.readouterr().err   # none was chosen
    argv = TINY + ["--data-dir", "shapes", "--train-on-val", "--scst", "--init-from",
                   str(run / "last.h5"), "--out", str(tmp_path / "S")]
    with pytest.raises(SystemExit):
        train.parse_args(argv)
    assert "cover the train split only" in capsys.readouterr().err


# 5. The model can learn -------------------------------------------------------------------------

def test_a_tiny_model_overfits_eight_captions(run_a, workdir):
    """8 images with one caption each (several captions of one image start differently, and
    no model can tell which one comes: CE could not reach 0). CE starts near ln V = ln 39 = 3.7;
    it ends at 0.011-0.014 over init seeds 0-3, so 0.05 leaves a margin of about 4."""
    cache = json.loads((run_a.path / "config.json").read_text())["cache"]
    with open_cache(cache) as f:
        vocab_size = len(json.loads(f.attrs["vocab"])["words"])
    batch = next(iter(CaptionBatches(cache, "train", 8, per_image=True, prefetch=0).epoch(0)))
    first = np.searchsorted(batch.caption_image, np.arange(8))     # each image's first caption
    T = int(batch.mask[first].sum(axis=1).max())
    inputs, targets, mask = batch.inputs[first, :T], batch.targets[first, :T], batch.mask[first, :T]

    config = Config(vocab_size=vocab_size, image_size=32, channels=(4, 8), embed_size=8,
                    hidden_size=32, attention_size=8, dropout=0.0)
    params = init_params(config, np.random.default_rng(0))
    optimizer = Adam(params)
    for _ in range(200):
        _, parts, grads = loss_and_grads(params, config, batch.images, inputs, targets, mask,
                                         np.arange(8, dtype=np.int32))
        optimizer.step(params, grads, 1e-2)
    assert parts["ce"] < 0.05


def test_a_batchnorm_model_trains_resumes_and_round_trips_its_statistics(in_workdir, tmp_path,
                                                                          capsys):
    """--batchnorm --residual (two units after the pooling; no final pool, a finer grid): the
    running statistics move during training, live in the checkpoints, come back on --resume, and
    evaluate (eval mode) reproduces the run's test metrics from best.h5."""
    out = tmp_path / "BN"
    assert train.main(train_args(out, "--batchnorm", "--residual", "--residual-after-pool",
                                 "--residual-units", "2", "--no-final-pool", "--epochs", "1")) == 0
    params, optimizer, meta = load_checkpoint(out / "last.h5")
    assert meta["config"]["final_pool"] is False
    assert meta["config"]["batchnorm"] is True and "conv0_b" not in params
    assert meta["config"]["residual"] is meta["config"]["residual_after_pool"] is True
    assert meta["config"]["residual_units"] == 2
    assert not np.array_equal(params["bn0_running_mean"], np.zeros(4))
    assert not np.array_equal(params["bn1_running_var"], np.ones(8))
    assert not np.array_equal(params["res1_1_bn_running_var"], np.ones(8))
    assert np.abs(params["res0_bn_w"]).max() > 0            # the units left the identity
    assert np.abs(params["res0_1_bn_w"]).max() > 0
    assert not any("running" in key for key in optimizer)       # statistics are not trained
    assert train.main(["--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    resumed, _, meta = load_checkpoint(out / "last.h5")
    assert meta["epoch"] == 2
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 2
    assert train.main(["--resume", str(out), "--epochs", "1", "--quiet"]) == 0   # only re-scores
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 2
    assert not np.array_equal(resumed["bn0_running_mean"], params["bn0_running_mean"])
    rows = read_log(out)[1]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    capsys.readouterr()
    assert evaluate.main([str(out), "--split", "test", "--beam", "3", "--out", str(tmp_path)]) == 0
    original = json.loads((out / "metrics.json").read_text())
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert {k: again[k] for k in SCORES} == {k: original[k] for k in SCORES}


def test_scst_fine_tunes_a_trained_run(run_a, in_workdir, tmp_path, capsys):
    """--scst --init-from: a short self-critical run on the built-in dataset (two samples per
    image, each against the other's reward) changes the weights, logs val scores, and writes a
    complete run directory; without --init-from, or with options that do not fit, it is an error."""
    init = ["--init-from", str(run_a.path / "best.h5")]
    for bad, message in ((["--scst"], "--init-from"),
                         (["--scst-samples", "3"], "go with --scst"),
                         (["--scst", *init, "--scst-baseline", "mean"], "--scst-samples 2 or more")):
        with pytest.raises(SystemExit) as usage:              # a usage error, before any work
            train.main(train_args(tmp_path / "bad", *bad))
        assert usage.value.code == 2 and message in capsys.readouterr().err
    out = tmp_path / "SCST"
    source, _, _ = load_checkpoint(run_a.path / "best.h5")
    assert train.main(train_args(out, "--scst", *init, "--scst-samples", "2", "--scst-baseline",
                                 "mean", "--epochs", "1", "--lr", "1e-3", "--warmup-steps", "0")) == 0
    tuned, optimizer, meta = load_checkpoint(out / "last.h5")
    assert meta["args"]["scst"] is True and optimizer["t"] == BATCHES
    assert meta["args"]["scst_samples"] == 2 and meta["args"]["scst_baseline"] == "mean"
    assert any(not np.array_equal(tuned[k], source[k]) for k in source)
    (row,) = read_log(out)[1]
    assert math.isfinite(float(row["train_loss"])) and 0 <= float(row["val_cider"]) <= 10
    assert json.loads((out / "metrics.json").read_text())["protocol"].startswith("test split")


# 6. rawcap.evaluate ------------------------------------------------------------------------------

def test_evaluate_reproduces_the_run_metrics(run_a, in_workdir, tmp_path, capsys):
    status = evaluate.main([str(run_a.path), "--split", "test", "--beam", "3", "--out", str(tmp_path)])
    assert status == 0
    assert "BLEU-4" in capsys.readouterr().out
    original = json.loads((run_a.path / "metrics.json").read_text())
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert {k: again[k] for k in SCORES + ["protocol"]} == {k: original[k] for k in SCORES + ["protocol"]}
    assert (json.loads((tmp_path / "captions_test.json").read_text())
            == json.loads((run_a.path / "captions_test.json").read_text()))


def test_evaluate_of_a_run_with_itself_is_the_run(run_a, in_workdir, tmp_path, capsys):
    """An ensemble of two copies of one model averages equal log-probabilities: the same captions."""
    argv = [str(run_a.path), str(run_a.path / "best.h5"), "--split", "test", "--beam", "3"]
    assert evaluate.main(argv + ["--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("model: ") == 2
    assert (json.loads((tmp_path / "captions_test.json").read_text())
            == json.loads((run_a.path / "captions_test.json").read_text()))
    assert len(json.loads((tmp_path / "metrics.json").read_text())["checkpoint"]) == 2


@pytest.mark.parametrize("change, says", [
    (dict(image_size=16), "differ in their image size"), (dict(resize="squash"), "differ in their resize mode"),
    (dict(vocab=["other"]), "differ in their vocabulary")])
def test_an_ensemble_must_share_vocabulary_image_size_and_resize(change, says):
    config, meta = Config(vocab_size=9, image_size=8, channels=(4,)), {"vocab": ["a"]}
    other = Config(**{**config.to_dict(), **{k: v for k, v in change.items() if k != "vocab"}})
    models = [({}, config, meta), ({}, other, {"vocab": change.get("vocab", ["a"])})]
    with pytest.raises(ValueError, match=f"a.h5 and b.h5 {says}"):
        ship.check_ensemble(["a.h5", "b.h5"], models)


@pytest.mark.parametrize("what", ["missing run directory", "not a checkpoint", "empty directory"])
def test_evaluate_rejects_what_is_not_a_run(tmp_path, capsys, what):
    path = tmp_path / "nowhere"
    if what == "not a checkpoint":
        path.write_text("these are notes, not weights\n")
    elif what == "empty directory":
        path.mkdir()
    assert evaluate.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(path) in err


# 7. rawcap.caption -------------------------------------------------------------------------------

def parse_captions(stdout):
    """'path: caption' lines -> {path: caption}."""
    return dict(line.partition(": ")[::2] for line in stdout.splitlines())


def test_caption_reads_any_image_and_reports_bad_ones(run_a, workdir, tmp_path, capsys):
    rng = np.random.default_rng(0)
    wide, tall = tmp_path / "wide.png", tmp_path / "tall.jpg"
    Image.fromarray(rng.integers(0, 256, (170, 300, 4), dtype=np.uint8), "RGBA").save(wide)
    Image.fromarray(rng.integers(0, 256, (260, 90), dtype=np.uint8), "L").save(tall)
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("shapes_00045.jpg", "shapes_00046.jpg"):
        shutil.copy(workdir / "shapes" / "images" / name, folder)
    missing, corrupt = tmp_path / "missing.jpg", tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    readable = [wide, tall, folder / "shapes_00045.jpg", folder / "shapes_00046.jpg"]

    status = caption.main([str(run_a.path / "best.h5"), str(wide), str(tall), str(folder),
                           str(missing), str(corrupt), "--json", str(tmp_path / "out.json"),
                           "--attention", str(tmp_path / "att.png")])
    out, err = capsys.readouterr()
    assert status == 1
    captions = parse_captions(out)
    assert list(captions) == [str(p) for p in readable]
    assert str(missing) in err and str(corrupt) in err
    assert not any(str(p) in err for p in readable)
    assert json.loads((tmp_path / "out.json").read_text()) == captions

    # One attention grid per readable image: the photo, then a tile per word (and <end>),
    # 5 tiles of 128 x (128 + 14) to a row.
    assert sorted(p.name for p in tmp_path.glob("att*.png")) == sorted(
        f"att-{p.stem}.png" for p in readable)
    for path in readable:
        with Image.open(tmp_path / f"att-{path.stem}.png") as grid:
            words = len(captions[str(path)].split())
            rows = {math.ceil((1 + words) / 5), math.ceil((2 + words) / 5)}
            assert grid.format == "PNG" and grid.width == 5 * 128 and grid.height / 142 in rows

    # A run directory stands for its best.h5; one image gets OUT.png itself.
    status = caption.main([str(run_a.path), str(wide), "--attention", str(tmp_path / "one.png")])
    assert status == 0
    assert parse_captions(capsys.readouterr().out) == {str(wide): captions[str(wide)]}
    with Image.open(tmp_path / "one.png") as grid:
        assert grid.format == "PNG"

    # Models before the images caption together: the run with itself as an ensemble is the run.
    assert caption.main([str(run_a.path), str(run_a.path / "best.h5"), str(wide)]) == 0
    out, err = capsys.readouterr()
    assert parse_captions(out) == {str(wide): captions[str(wide)]} and err.count("model: ") == 2


@pytest.mark.parametrize("resize", ["crop", "squash"])
def test_caption_preprocesses_a_photo_the_way_the_checkpoint_says(run_a, tmp_path, capsys, resize):
    """A JPEG of unusual size and aspect, a PNG with alpha and a grayscale image: caption's words
    are those of the model on load_image(path, S, the checkpoint's resize), and crop and squash
    really give different pixels for them."""
    params, optimizer, meta = load_checkpoint(run_a.path / "best.h5")
    meta["config"]["resize"] = resize
    save_checkpoint(tmp_path / "model.h5", params, optimizer, meta)
    config, vocab = Config.from_dict(meta["config"]), Vocabulary(meta["vocab"])
    rng = np.random.default_rng(1)
    photos = {tmp_path / "odd.jpg": rng.integers(0, 256, (61, 347, 3), dtype=np.uint8),
              tmp_path / "alpha.png": rng.integers(0, 256, (90, 40, 4), dtype=np.uint8),
              tmp_path / "gray.png": rng.integers(0, 256, (33, 70), dtype=np.uint8)}
    for path, pixels in photos.items():
        Image.fromarray(pixels).save(path)
    assert caption.main([str(tmp_path / "model.h5"), *map(str, photos), "--beam", "1"]) == 0
    captions = parse_captions(capsys.readouterr().out)
    for path in photos:
        image = load_image(path, config.image_size, resize)
        other = load_image(path, config.image_size, "squash" if resize == "crop" else "crop")
        assert image.shape == (3, 32, 32) and not np.array_equal(image, other)
        tokens = decode(params, config, image[None].astype(np.float32) / 255).tokens[0]
        assert captions[str(path)] == " ".join(vocab.decode(tokens))


def test_train_records_the_caches_resize_in_the_model_config(workdir, in_workdir):
    args = train.parse_args(TINY + ["--data-dir", "shapes", "--resize", "squash"])
    cache = train.prepare_data(args, log=lambda line: None)
    crop = train.prepare_data(train.parse_args(TINY + ["--data-dir", "shapes"]), log=lambda line: None)
    assert cache != crop                                # each has its own cache
    assert train.model_config(args, cache).resize == "squash"


# 8. rawcap.bench ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [[], ["--batchnorm", "--residual"], ["--deep-output"],
                                   ["--batchnorm", "--residual", "--residual-after-pool"],
                                   ["--batchnorm", "--residual", "--residual-units", "2"],
                                   ["--no-final-pool"]],
                         ids=["plain", "residual", "deep", "residual-after-pool", "two-units",
                              "no-final-pool"])
def test_bench_prints_the_time_of_each_part_and_images_per_second(capsys, model):
    assert bench.main(["--batch-size", "4", "--captions-per-image", "2", "--length", "5",
                       "--vocab-size", "20", "--image-size", "32", "--channels", "4,8",
                       "--embed-size", "8", "--hidden-size", "16", "--attention-size", "8",
                       "--steps", "2", "--warmup", "1"] + model) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ("batchnorm, residual" in lines[0]) == ("--residual" in model)
    assert ("residual after pool;" in lines[0]) == ("--residual-after-pool" in model)
    assert ("residual x 2;" in lines[0]) == ("--residual-units" in model)
    assert ("deep output;" in lines[0]) == ("--deep-output" in model)
    assert ("no final pool (L=256);" in lines[0]) == ("--no-final-pool" in model)   # 32 / 2 = 16
    ms = {}
    for part in ("forward", "backward", "optimizer", "step"):
        found = [re.fullmatch(rf"\s*{part}\s+([\d.]+) ms.*", line) for line in lines]
        ms[part] = float(next(m for m in found if m).group(1))
    last = re.fullmatch(r"([\d.]+) images/s \((\d+) captions/s\)", lines[-1])
    assert last, lines[-1]
    assert float(last.group(1)) == pytest.approx(4 / ms["step"] * 1e3, rel=0.05)


# 9. Bad command lines ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--data", "flickr8k"], "--data flickr8k needs --data-dir"),
    (["--residual"], "--residual needs --batchnorm"),
    (["--batchnorm", "--residual-after-pool"], "--residual-after-pool places the residual units"),
    (["--batchnorm", "--residual-units", "2"], "--residual-units counts the residual units"),
    (["--zoom", "1.2"], "--zoom and --colour-jitter are kinds of augmentation"),
    (["--augment", "--zoom", "0.8"], "--zoom 0.8: a zoom factor is at least 1"),
    (["--augment", "--colour-jitter", "1"], "--colour-jitter 1.0: must lie in [0, 1)"),
])
def test_a_bad_command_line_is_an_error_before_anything_is_made(tmp_path, monkeypatch, capsys,
                                                                 argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        train.main(argv + ["--quiet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
@pytest.mark.parametrize("command, argv", [
    (train.main, ["--quiet"]),
    (caption.main, ["run.h5", "photo.jpg"]),
    (bench.main, []),
], ids=["train", "caption", "bench"])
def test_device_cuda_without_cupy_is_an_error(tmp_path, monkeypatch, capsys, command, argv):
    monkeypatch.chdir(tmp_path)
    assert command(argv + ["--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "CuPy" in err


@pytest.mark.parametrize("command, options", [
    (train.main, ["--data-dir", "--resume", "--init-from", "--epochs", "--device"]),
    (evaluate.main, ["--split", "--beam", "--cache"]),
    (caption.main, ["--beam", "--attention", "--json"]),
    (bench.main, ["--steps", "--warmup", "--batch-size", "--device"]),
], ids=["train", "evaluate", "caption", "bench"])
def test_help_exits_0_and_lists_the_main_options(capsys, command, options):
    with pytest.raises(SystemExit) as stop:
        command(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert all(option in out for option in options)
