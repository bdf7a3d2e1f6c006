"""The model in the box: rawcap.ship writes a run's best.h5 as the small shipped file; caption
and evaluate use it when given no checkpoint; photos of every kind go through it.

A tiny batchnorm run (50 shapes of 32 x 32, 2 epochs, seconds) is trained once for the module;
the tests ship it into their own temporary folder and point $RAWCAP_MODEL at it, so no test
depends on (or writes) the package's own rawcap/weights/flickr8k.h5.
"""
import fnmatch
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import setuptools
from PIL import Image

from rawcap import caption, evaluate, ship, train
from rawcap.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rawcap.data.images import load_image
from rawcap.data.shapes import generate_shapes
from rawcap.data.vocab import Vocabulary
from rawcap.decode import decode
from rawcap.model import is_statistic, loss_and_grads

TINY = ["--image-size", "32", "--channels", "4,8", "--embed-size", "8", "--hidden-size", "16",
        "--attention-size", "8", "--batch-size", "8", "--batchnorm", "--quiet"]
SCORES = ["bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder holding the tiny dataset (shapes/), its cache (data/) and the run (runs/A)."""
    root = tmp_path_factory.mktemp("ship")
    generate_shapes(root / "shapes", n_images=50, image_size=32, workers=1, progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert train.main(TINY + ["--data-dir", "shapes", "--epochs", "2", "--out", "runs/A"]) == 0
    return root


@pytest.fixture(scope="module")
def shipped(workdir):
    """The run shipped twice, float16 (the default) and float32 -> {dtype name: path}."""
    return {dtype: _ship(workdir, dtype) for dtype in ("float16", "float32")}


def _ship(workdir, dtype):
    out = workdir / f"shipped-{dtype}.h5"
    assert ship.main([str(workdir / "runs" / "A"), "--out", str(out)]
                     + (["--float32"] if dtype == "float32" else [])) == 0
    return out


@pytest.fixture
def in_workdir(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    return workdir


def captions_of(stdout):
    """caption's 'path: caption' lines -> {path: caption}."""
    return dict(line.partition(": ")[::2] for line in stdout.splitlines())


# 1. The shipped file ---------------------------------------------------------------------------

def test_the_shipped_file_holds_what_decoding_needs_and_no_optimizer_state(workdir, shipped):
    best = workdir / "runs" / "A" / "best.h5"
    params, _, meta = load_checkpoint(best)
    small, optimizer, small_meta = load_checkpoint(shipped["float16"])
    assert optimizer == {}
    assert small.keys() == params.keys()
    for name, value in small.items():
        statistic = name.endswith(("_running_mean", "_running_var"))
        assert value.dtype == (np.float32 if statistic else np.float16), name
        np.testing.assert_array_equal(value, params[name].astype(value.dtype))
    assert small_meta["config"] == meta["config"] and small_meta["vocab"] == meta["vocab"]
    assert {"pixel_mean", "pixel_std", "resize"} <= small_meta["config"].keys()
    assert not {"args", "log", "dropout_rng"} & small_meta.keys()
    about = small_meta["shipped"]
    assert about["run"] == "A" and about["epoch"] == meta["epoch"] and about["dtype"] == "float16"
    assert about["test"]["bleu4"] == json.loads((best.parent / "metrics.json").read_text())["bleu4"]
    assert about["data"] == {"min_count": 5, "max_length": 20, "skip_bad": False}
    # best.h5 has Adam's two moments beside the float32 weights: 6 bytes of them per float16 one
    assert shipped["float16"].stat().st_size < best.stat().st_size / 3
    assert shipped["float16"].stat().st_size < shipped["float32"].stat().st_size


def test_the_head_of_the_bag_of_words_loss_is_left_out(workdir, tmp_path):
    """It only trains the encoder (train --bag-of-words): decoding never reads it."""
    params, optimizer, meta = load_checkpoint(workdir / "runs" / "A" / "best.h5")
    D, V = params["att_feat_w"].shape[0], params["out_b"].shape[0]
    head = {"bow_w": np.ones((D, V), np.float32), "bow_b": np.zeros(V, np.float32)}
    save_checkpoint(tmp_path / "bow.h5", {**params, **head}, optimizer,
                    dict(meta, config=dict(meta["config"], bag_of_words=0.5)))
    assert ship.main([str(tmp_path / "bow.h5"), "--out", str(tmp_path / "s.h5")]) == 0
    small, _, small_meta = load_checkpoint(tmp_path / "s.h5")
    assert small.keys() == params.keys() and small_meta["config"] == meta["config"]
    assert small_meta["shipped"]["parameters"] == sum(
        v.size for k, v in params.items() if not is_statistic(k))


def test_the_shipped_model_fine_tunes_with_a_fresh_bag_of_words_head(workdir, shipped, in_workdir,
                                                                   monkeypatch, capsys):
    """train --init-from the shipped file --bag-of-words: every weight it holds starts the run,
    and the head it left out starts fresh; any other missing weight is still an error."""
    small = load_checkpoint(shipped["float16"])[0]
    first_step = {}

    def spy(params, *rest, **kwargs):
        if not first_step:
            first_step.update({k: np.array(v) for k, v in params.items()})
        return loss_and_grads(params, *rest, **kwargs)

    monkeypatch.setattr(train, "loss_and_grads", spy)
    argv = TINY + ["--data-dir", "shapes", "--epochs", "1", "--bag-of-words", "1",
                   "--init-from", str(shipped["float16"])]
    assert train.main(argv + ["--out", "runs/tuned"]) == 0
    assert first_step.keys() == small.keys() | {"bow_w", "bow_b"}
    assert all(np.array_equal(first_step[k], small[k].astype(np.float32)) for k in small)
    assert np.abs(first_step["bow_w"]).max() > 0 and not first_step["bow_b"].any()

    del small["out_b"]
    save_checkpoint(workdir / "no-out-b.h5", small, {}, load_checkpoint(shipped["float16"])[2])
    argv[argv.index(str(shipped["float16"]))] = str(workdir / "no-out-b.h5")
    assert train.main(argv + ["--out", "runs/untuned"]) == 2
    assert "out_b has nothing" in capsys.readouterr().err


def test_load_model_gives_float32_weights_and_refuses_a_damaged_file(shipped, tmp_path):
    params, config, meta = ship.load_model(shipped["float16"])
    assert all(v.dtype == np.float32 for v in params.values())
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(shipped["float16"].read_bytes())
    with h5py.File(damaged, "r+") as f:
        f["params/out_b"][0] += 1
    with pytest.raises(CheckpointError, match="params/out_b does not match its checksum"):
        ship.load_model(damaged)


def test_a_weight_beyond_float16_is_refused_with_a_hint(workdir, tmp_path, capsys):
    params, optimizer, meta = load_checkpoint(workdir / "runs" / "A" / "best.h5")
    params["out_b"][0] = 1e5
    save_checkpoint(tmp_path / "big.h5", params, optimizer, meta)
    assert ship.main([str(tmp_path / "big.h5"), "--out", str(tmp_path / "s.h5")]) == 2
    assert "out_b" in capsys.readouterr().err and not (tmp_path / "s.h5").exists()
    assert ship.main([str(tmp_path / "big.h5"), "--out", str(tmp_path / "s.h5"), "--float32"]) == 0


def test_setup_installs_the_shipped_files(monkeypatch):
    """setup.py's package_data covers ship.SHIPPED and the ensemble members it names beside it,
    so `pip install` carries the whole model."""
    root = Path(__file__).resolve().parents[1]
    got = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: got.update(kwargs))
    monkeypatch.chdir(root)
    exec(compile((root / "setup.py").read_text(), "setup.py", "exec"), {"__name__": "__main__"})
    members = ship.ensemble_members(load_checkpoint(ship.SHIPPED)[2])
    for path in [ship.SHIPPED] + [ship.SHIPPED.with_name(name) for name in members]:
        assert path.is_file()
        relative = path.relative_to(root / "rawcap").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in got["package_data"]["rawcap"])


# 2. caption and evaluate with no checkpoint ----------------------------------------------------

def test_caption_without_a_checkpoint_uses_the_shipped_model(workdir, shipped, tmp_path,
                                                             monkeypatch, capsys):
    photo = workdir / "shapes" / "images" / "shapes_00045.jpg"
    monkeypatch.setenv(ship.ENVIRONMENT, str(shipped["float32"]))
    assert caption.main([str(photo), "--attention", str(tmp_path / "att.png")]) == 0
    out, err = capsys.readouterr()
    assert f"the shipped model {shipped['float32']}" in err and "float32" in err
    with Image.open(tmp_path / "att.png") as grid:
        assert grid.format == "PNG" and grid.width == 5 * 128
    # another file written by rawcap.ship, given by path, is not called the shipped model
    assert caption.main([str(shipped["float16"]), str(photo)]) == 0
    err = capsys.readouterr().err
    assert f"the model file {shipped['float16']}: " in err and "the shipped model" not in err
    # float32 is lossless: the run's own best.h5 writes the same caption
    assert caption.main([str(workdir / "runs" / "A"), str(photo)]) == 0
    assert captions_of(capsys.readouterr().out) == captions_of(out)


@pytest.mark.parametrize("how", ["environment", "package"])
def test_caption_without_a_checkpoint_or_a_shipped_model_says_so(workdir, tmp_path, monkeypatch,
                                                                 capsys, how):
    missing = tmp_path / "none.h5"
    if how == "environment":
        monkeypatch.setenv(ship.ENVIRONMENT, str(missing))
    else:
        monkeypatch.delenv(ship.ENVIRONMENT, raising=False)
        monkeypatch.setattr(ship, "SHIPPED", missing)
    assert caption.main([str(workdir / "shapes" / "images" / "shapes_00045.jpg")]) == 2
    err = capsys.readouterr().err
    assert "no shipped model" in err and str(missing) in err and "give a checkpoint" in err


def test_the_first_argument_is_the_model_only_when_it_names_one(workdir, tmp_path):
    assert caption.is_model(workdir / "runs" / "A") and caption.is_model(tmp_path / "x.h5")
    assert not caption.is_model(workdir / "shapes" / "images")      # a folder of photos
    assert not caption.is_model(workdir / "shapes" / "images" / "shapes_00045.jpg")


def test_evaluate_reproduces_the_run_metrics_from_the_shipped_weights(workdir, shipped, in_workdir,
                                                                      tmp_path, monkeypatch, capsys):
    """Given the dataset, the shipped float32 weights score exactly the run's metrics.json; the
    float16 ones are scored the same way (the docs report what they change)."""
    run = json.loads((workdir / "runs" / "A" / "metrics.json").read_text())
    for dtype, path in shipped.items():
        monkeypatch.setenv(ship.ENVIRONMENT, str(path))
        out = tmp_path / dtype
        assert evaluate.main(["--data-dir", "shapes", "--beam", "3", "--out", str(out), "--quiet"]) == 0
        assert f"model: the shipped model {path}" in capsys.readouterr().out
        again = json.loads((out / "metrics.json").read_text())
        assert again["protocol"] == run["protocol"]
        if dtype == "float32":
            assert {k: again[k] for k in SCORES} == {k: run[k] for k in SCORES}
            assert (json.loads((out / "captions_test.json").read_text())
                    == json.loads((workdir / "runs" / "A" / "captions_test.json").read_text()))


def test_evaluate_of_the_shipped_model_needs_an_out_folder_and_data(shipped, in_workdir, tmp_path,
                                                                   monkeypatch, capsys):
    monkeypatch.setenv(ship.ENVIRONMENT, str(shipped["float16"]))
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--data-dir", "shapes"])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err
    # Without --data-dir it falls back on the training cache; gone, it says what to give.
    with h5py.File(shipped["float16"], "r") as f:
        meta = json.loads(f.attrs["meta"])
    cache = Path(meta["cache"])
    cache.rename(cache.with_suffix(".moved"))
    try:
        assert evaluate.main(["--out", str(tmp_path)]) == 2
    finally:
        cache.with_suffix(".moved").rename(cache)
    err = capsys.readouterr().err
    assert str(cache) in err and "--data-dir" in err


def test_evaluate_writes_nothing_into_the_package_when_given_the_shipped_file(capsys):
    """Named by its path, the shipped file is still the shipped model: its scores would land
    beside it, in the installed package, so evaluate asks for --out before decoding anything."""
    before = sorted(ship.SHIPPED.parent.iterdir())
    assert evaluate.main([str(ship.SHIPPED), "--split", "val"]) == 2
    assert f"{ship.SHIPPED} is the shipped model" in capsys.readouterr().err
    assert sorted(ship.SHIPPED.parent.iterdir()) == before


# 3. An ensemble shipped ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ensemble(workdir):
    """Runs A and B (another seed) shipped together, float32 so that they decode exactly as the
    runs do, with the test metrics of the two decoded together -> the first file's path."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        assert train.main(TINY + ["--data-dir", "shapes", "--epochs", "2", "--seed", "1",
                                  "--out", "runs/B"]) == 0
        assert evaluate.main(["runs/A", "runs/B", "--out", "scored-AB", "--quiet"]) == 0
        out = workdir / "ensemble" / "pair.h5"
        assert ship.main(["runs/A", "runs/B", "--out", str(out), "--float32",
                          "--metrics", "scored-AB/metrics.json"]) == 0
    return out


def test_several_runs_ship_as_an_ensemble_that_decodes_as_they_do_together(
        workdir, ensemble, in_workdir, tmp_path, monkeypatch, capsys):
    """The first file names the second, beside it, and holds the ensemble's test scores; as the
    shipped model, it decodes with both: the captions and metrics of the two runs together."""
    second = ensemble.with_name("pair-2.h5")
    first_meta, second_meta = ship.load_model(ensemble)[2], ship.load_model(second)[2]
    scored = json.loads((workdir / "scored-AB" / "metrics.json").read_text())
    assert first_meta["shipped"]["ensemble"] == ["pair-2.h5"]
    assert first_meta["shipped"]["test"]["bleu4"] == scored["bleu4"]
    assert second_meta["shipped"]["run"] == "B" and second_meta["shipped"]["test"] is None
    assert "ensemble" not in second_meta["shipped"]

    monkeypatch.setenv(ship.ENVIRONMENT, str(ensemble))
    assert evaluate.main(["--data-dir", "shapes", "--out", str(tmp_path / "e"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "decoded together with pair-2.h5 beside it" in out and "the ensemble's test BLEU-4" in out
    assert f"model: the model file {second}" in out
    again = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert {k: again[k] for k in SCORES} == {k: scored[k] for k in SCORES}

    photo = workdir / "shapes" / "images" / "shapes_00046.jpg"
    assert caption.main([str(photo)]) == 0
    shipped_caption = captions_of(capsys.readouterr().out)
    assert caption.main(["runs/A", "runs/B", str(photo)]) == 0
    assert captions_of(capsys.readouterr().out) == shipped_caption


def test_an_ensemble_missing_a_member_or_scored_as_another_is_refused(
        workdir, ensemble, in_workdir, tmp_path, capsys):
    alone = tmp_path / "pair.h5"
    alone.write_bytes(ensemble.read_bytes())
    assert caption.main([str(alone), str(workdir / "shapes" / "images" / "shapes_00046.jpg")]) == 2
    err = capsys.readouterr().err
    assert f"{alone} is an ensemble's first file and names pair-2.h5" in err
    assert f"there is no {tmp_path / 'pair-2.h5'}" in err
    # the metrics of run A alone are not the ensemble's
    assert ship.main(["runs/A", "runs/B", "--out", str(tmp_path / "s.h5"),
                      "--metrics", "runs/A/metrics.json"]) == 2
    assert "it scored best.h5, not best.h5, best.h5" in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()


def test_a_shipped_file_shipped_again_keeps_where_it_came_from(shipped, tmp_path):
    """An ensemble's member can be a file rawcap.ship already wrote: its run, epoch and weights
    stay; the decoding and test scores are the new ones'."""
    again = tmp_path / "again.h5"
    assert ship.main([str(shipped["float16"]), "--out", str(again), "--beam", "2"]) == 0
    before, after = load_checkpoint(shipped["float16"]), load_checkpoint(again)
    assert before[0].keys() == after[0].keys()
    assert all(np.array_equal(before[0][k], after[0][k]) for k in before[0])
    keep = ("run", "checkpoint", "epoch", "best_val_bleu4", "parameters", "dataset", "data", "dtype")
    assert {k: after[2]["shipped"][k] for k in keep} == {k: before[2]["shipped"][k] for k in keep}
    assert after[2]["shipped"]["decoding"]["beam"] == 2 and after[2]["shipped"]["test"] is None


# 4. Photos of every kind -----------------------------------------------------------------------

def odd_photos(folder):
    """Photos of unusual size, aspect and mode -> {path: what it is}."""
    rng = np.random.default_rng(0)
    def noise(height, width, channels=3):
        shape = (height, width, channels) if channels > 1 else (height, width)
        return rng.integers(0, 256, shape, dtype=np.uint8)
    photos = {
        "wide.jpg": Image.fromarray(noise(45, 317)),
        "tall.jpg": Image.fromarray(noise(700, 45)),
        "rgba.png": Image.fromarray(noise(60, 90, 4), "RGBA"),
        "la.png": Image.fromarray(noise(90, 60, 2), "LA"),
        "gray.png": Image.fromarray(noise(50, 70, 1), "L"),
        "palette.png": Image.fromarray(noise(64, 48)).quantize(16),
        "cmyk.jpg": Image.fromarray(noise(40, 100, 4), "CMYK"),
    }
    for name, image in photos.items():
        image.save(folder / name, quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6                       # the camera was turned: rotate 90 degrees clockwise
    Image.fromarray(noise(30, 120)).save(folder / "rotated.jpg", quality=95, exif=exif)
    return [folder / name for name in [*photos, "rotated.jpg"]]


@pytest.mark.parametrize("resize", ["crop", "squash"])
def test_caption_reads_photos_of_every_kind(workdir, tmp_path, monkeypatch, capsys, resize):
    """Each photo is captioned by the shipped model exactly as decode captions load_image's
    pixels under the model's resize mode, and its attention grid (whose first tile is the
    photo as the model saw it) is the one drawn from those pixels."""
    params, optimizer, meta = load_checkpoint(workdir / "runs" / "A" / "best.h5")
    meta["config"]["resize"] = resize
    save_checkpoint(tmp_path / "run.h5", params, optimizer, meta)
    assert ship.main([str(tmp_path / "run.h5"), "--out", str(tmp_path / "model.h5")]) == 0
    monkeypatch.setenv(ship.ENVIRONMENT, str(tmp_path / "model.h5"))
    photos = odd_photos(tmp_path)
    assert caption.main([*map(str, photos), "--beam", "2", "--attention", str(tmp_path / "att.png")]) == 0
    got = captions_of(capsys.readouterr().out)
    params, config, meta = ship.load_model(tmp_path / "model.h5")
    vocab = Vocabulary(meta["vocab"])
    for path in photos:
        image = load_image(path, config.image_size, resize)
        captions = decode(params, config, image[None].astype(np.float32) / 255, beam_size=2)
        words = vocab.decode(captions.tokens[0])
        assert got[str(path)] == " ".join(words), path.name
        expected = caption.attention_grid(image, words + ["<end>"], captions.alphas[0])
        with Image.open(tmp_path / f"att-{path.stem}.png") as grid:
            np.testing.assert_array_equal(np.asarray(grid), np.asarray(expected), err_msg=path.name)


def test_the_exif_rotated_photo_is_turned_upright(tmp_path):
    """caption honours EXIF orientation: the rotated JPEG's pixels, turned 90 degrees clockwise,
    are what the model sees (squash keeps them all)."""
    path = next(p for p in odd_photos(tmp_path) if p.name == "rotated.jpg")
    with Image.open(path) as stored:
        upright = Image.fromarray(np.rot90(np.asarray(stored), k=-1))       # 30 wide, 120 tall
    assert upright.size == (30, 120)
    upright.save(tmp_path / "upright.png")
    np.testing.assert_array_equal(load_image(path, 32, "squash"),
                                  load_image(tmp_path / "upright.png", 32, "squash"))


# 5. Choosing the decoding on val ---------------------------------------------------------------

def test_a_sweep_scores_every_setting_on_val_as_single_runs_do(workdir, in_workdir, tmp_path, capsys):
    run = str(workdir / "runs" / "A")
    sweep = tmp_path / "sweep"
    assert evaluate.main([run, "--split", "val", "--beam", "1,2", "--length-penalty", "0,1",
                          "--out", str(sweep), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "length penalty" in out and "best BLEU-4" in out and "best CIDEr-D" in out
    rows = json.loads((sweep / "sweep_val.json").read_text())["rows"]
    assert [(r["beam"], r["length_penalty"]) for r in rows] == [(1, None), (2, 0.0), (2, 1.0)]
    assert sorted(p.name for p in sweep.iterdir()) == ["sweep_val.json"]       # nothing of test
    for row, options in zip(rows, (["--beam", "1"], ["--beam", "2", "--length-penalty", "0"],
                                   ["--beam", "2", "--length-penalty", "1"])):
        single = tmp_path / "-".join(options)
        assert evaluate.main([run, "--split", "val", *options, "--out", str(single), "--quiet"]) == 0
        scores = json.loads((single / "metrics_val.json").read_text())
        assert {k: row[k] for k in SCORES} == {k: scores[k] for k in SCORES}
        captions = json.loads((single / "captions_val.json").read_text()).values()
        assert row["distinct"] == len(set(captions))
        assert row["mean_words"] == pytest.approx(np.mean([len(c.split()) for c in captions]))
    assert "length penalty 1 decoding" in scores["protocol"]


def test_a_sweep_on_the_test_split_is_refused(workdir, in_workdir, tmp_path, capsys):
    assert evaluate.main([str(workdir / "runs" / "A"), "--beam", "2,3", "--out", str(tmp_path)]) == 2
    assert "--split val" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_caption_takes_the_length_penalty(workdir, shipped, monkeypatch, capsys):
    photo = workdir / "shapes" / "images" / "shapes_00046.jpg"
    params, config, meta = ship.load_model(shipped["float16"])
    image = load_image(photo, config.image_size, config.resize)[None].astype(np.float32) / 255
    monkeypatch.setenv(ship.ENVIRONMENT, str(shipped["float16"]))
    for a in (0.0, 1.0):
        assert caption.main([str(photo), "--beam", "3", "--length-penalty", str(a)]) == 0
        tokens = decode(params, config, image, beam_size=3, length_normalization=a).tokens[0]
        got = captions_of(capsys.readouterr().out)[str(photo)]
        assert got == " ".join(Vocabulary(meta["vocab"]).decode(tokens))


def test_ship_help_explains_its_options(capsys):
    with pytest.raises(SystemExit) as stop:
        ship.main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and "--out" in out and "--float32" in out and "float16" in out


def test_evaluate_refuses_a_cache_resized_another_way(workdir, in_workdir, tmp_path, capsys):
    """The shapes are square, so crop and squash give the same pixels here; the refusal is on
    what the cache records, which on other data is what matters."""
    from rawcap.data.cache import prepare
    squashed = prepare("shapes", tmp_path / "squashed.h5", size=32, resize="squash", progress=False,
                       log=lambda line: None)
    assert evaluate.main([str(workdir / "runs" / "A"), "--cache", str(squashed),
                          "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "images resized by squash" in err and "expects crop" in err


def test_the_decoding_chosen_on_val_ships_with_the_model(workdir, in_workdir, tmp_path, monkeypatch,
                                                         capsys):
    """ship --beam/--length-penalty records the decoding; caption and evaluate then use it unless
    told otherwise, and --metrics must be the test split at that decoding."""
    run, out = workdir / "runs" / "A", tmp_path / "chosen.h5"
    chosen = ["--beam", "2", "--length-penalty", "0.5"]
    assert evaluate.main([str(run), *chosen, "--out", str(tmp_path / "b2"), "--quiet"]) == 0
    capsys.readouterr()
    assert ship.main([str(run), "--out", str(out), *chosen, "--metrics", str(run / "metrics.json")]) == 2
    assert "not the test split at beam 2, length penalty 0.5" in capsys.readouterr().err
    assert ship.main([str(run), "--out", str(out), *chosen,
                      "--metrics", str(tmp_path / "b2" / "metrics.json")]) == 0
    assert "decodes with beam 2, length penalty 0.5" in capsys.readouterr().out
    params, config, meta = ship.load_model(out)
    b2 = json.loads((tmp_path / "b2" / "metrics.json").read_text())
    assert meta["shipped"]["test"] == dict(bleu4=b2["bleu4"], cider=b2["cider"],
                                           decoding="beam 2, length penalty 0.5")
    monkeypatch.setenv(ship.ENVIRONMENT, str(out))
    photo = workdir / "shapes" / "images" / "shapes_00047.jpg"
    assert caption.main([str(photo)]) == 0
    got, err = capsys.readouterr()
    assert "decodes with beam 2, length penalty 0.5" in err
    image = load_image(photo, config.image_size, config.resize)[None].astype(np.float32) / 255
    tokens = decode(params, config, image, beam_size=2, length_normalization=0.5).tokens[0]
    assert captions_of(got)[str(photo)] == " ".join(Vocabulary(meta["vocab"]).decode(tokens))
    assert evaluate.main(["--data-dir", "shapes", "--out", str(tmp_path / "e"), "--quiet"]) == 0
    protocol = json.loads((tmp_path / "e" / "metrics.json").read_text())["protocol"]
    assert ", beam 2, length penalty 0.5 decoding," in protocol
