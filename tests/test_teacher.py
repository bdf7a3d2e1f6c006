"""Word-level distillation: a teacher's next-word distributions (rawcap.teacher) and a student
trained on them (python -m rawcap.train --teacher)."""
import json

import h5py
import numpy as np
import pytest

from rawcap import train
from rawcap.data.batches import CaptionBatches
from rawcap.data.cache import open_cache
from rawcap.checkpoint import save_checkpoint
from rawcap.data.shapes import generate_shapes
from rawcap.model import init_params
from rawcap.ship import load_model
from rawcap.teacher import Teacher, main, teacher_log_probs, top_k_targets, write_teacher

MODEL = ["--channels", "4,8", "--embed-size", "8", "--hidden-size", "16", "--attention-size", "8",
         "--batch-size", "8", "--quiet", "--epochs", "1", "--batchnorm"]
TINY = MODEL + ["--image-size", "32", "--data-dir", "shapes"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 1-epoch run on a small shapes dataset -> (its folder, its cache)."""
    root = tmp_path_factory.mktemp("teacher")
    generate_shapes(root / "shapes", n_images=40, image_size=32, workers=1, progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert train.main(TINY + ["--out", str(root / "run")]) == 0
    return root / "run", json.loads((root / "run" / "config.json").read_text())["cache"]


def test_top_k_keeps_the_largest_scores_largest_first_as_a_softmax_among_them():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((2, 3, 9))
    mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    indices, probs = top_k_targets(scores, mask, 4)
    assert indices.dtype == np.int32 and probs.dtype == np.float32
    for b, t in zip(*np.nonzero(mask)):
        want = np.argsort(-scores[b, t])[:4]
        np.testing.assert_array_equal(indices[b, t], want)
        top = scores[b, t, want]
        np.testing.assert_allclose(probs[b, t], np.exp(top) / np.exp(top).sum(), rtol=1e-6)
    assert not indices[0, 2].any() and not probs[0, 2].any()           # a masked step: all 0


def test_a_temperature_flattens_or_sharpens_the_k_words_and_keeps_their_order():
    rng = np.random.default_rng(1)
    scores = 3 * rng.standard_normal((2, 3, 9))
    mask = np.ones((2, 3), bool)
    plain = top_k_targets(scores, mask, 4)
    for tau in (0.5, 2.0):
        indices, probs = top_k_targets(scores, mask, 4, temperature=tau)
        np.testing.assert_array_equal(indices, plain[0])
        top = np.take_along_axis(scores, indices, axis=2) / tau
        want = np.exp(top) / np.exp(top).sum(axis=2, keepdims=True)
        np.testing.assert_allclose(probs, want, rtol=1e-6)
        flatter = probs[:, :, 0] < plain[1][:, :, 0]                   # the first word's share
        assert flatter.all() if tau > 1 else not flatter.any()


def test_an_ensemble_teacher_averages_its_models_log_probabilities(run):
    _, cache = run
    config = load_model(run[0] / "best.h5")[1]
    models = [(init_params(config, np.random.default_rng(seed)), config) for seed in (1, 2)]
    batch = next(iter(CaptionBatches(cache, "train", 3, per_image=True, prefetch=0).epoch(0)))
    scores = teacher_log_probs(models, batch.images, batch.inputs, batch.caption_image)
    each = [teacher_log_probs([m], batch.images, batch.inputs, batch.caption_image) for m in models]
    np.testing.assert_allclose(scores, (each[0] + each[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(np.exp(each[0]).sum(axis=2), 1, rtol=1e-5)  # each a distribution


def test_each_train_caption_row_holds_its_own_targets_and_the_rest_is_zero(run, tmp_path):
    folder, cache = run
    params, config, _ = load_model(folder / "best.h5")
    out = write_teacher([(params, config)], cache, tmp_path / "teacher.h5", top_k=3,
                        temperature=1.5, files=["best.h5"], progress=False)
    with h5py.File(out) as f:
        indices, probs = f["indices"][()], f["probs"][()]
        assert json.loads(f.attrs["models"]) == ["best.h5"] and f.attrs["top_k"] == 3
        assert f.attrs["temperature"] == 1.5
    with open_cache(cache) as f:
        captions, lengths = f["captions"][()], f["caption_lengths"][()]
        split = f["split"][()][f["caption_image"][()]]
    assert indices.shape == probs.shape == (len(captions), captions.shape[1] - 1, 3)
    steps = np.arange(captions.shape[1] - 1) < lengths[:, None] - 1     # the targets' mask
    taught = steps & (split == 0)[:, None]
    np.testing.assert_allclose(probs.sum(axis=2)[taught], 1, rtol=1e-5)
    assert not probs[~taught].any() and not indices[~taught].any()
    # One caption, decoded on its own, gets the scores written in its row.
    loader = CaptionBatches(cache, "train", 1, prefetch=0)
    for batch in list(loader.epoch(0))[:5]:
        row, T = batch.caption_rows[0], batch.inputs.shape[1]
        scores = teacher_log_probs([(params, config)], batch.images, batch.inputs, batch.caption_image)
        want = top_k_targets(scores, batch.mask, 3, temperature=1.5)
        np.testing.assert_array_equal(indices[row, :T], want[0][0])
        np.testing.assert_allclose(probs[row, :T], want[1][0], rtol=1e-5, atol=1e-7)
        got = Teacher(out, cache).targets(batch)
        np.testing.assert_array_equal(got[0], indices[None, row, :T])


def test_a_student_trains_on_the_teachers_file_and_records_the_weight(run, tmp_path, capsys):
    folder, cache = run
    teacher = tmp_path / "teacher.h5"
    assert main([str(folder / "best.h5"), "--cache", cache, "--out", str(teacher), "--quiet"]) == 0
    assert f"wrote {teacher}" in capsys.readouterr().out
    student = tmp_path / "student"
    assert train.main(["--cache", cache, "--teacher", str(teacher), "--teacher-weight", "0.5",
                       "--out", str(student)] + MODEL) == 0
    model = json.loads((student / "config.json").read_text())["model"]
    assert model["teacher_weight"] == 0.5
    assert load_model(student / "best.h5")[1].teacher_weight == 0.5


def test_a_teacher_for_another_cache_or_a_lone_weight_is_refused_by_name(run, tmp_path, capsys):
    folder, cache = run
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["indices"], f["probs"] = np.zeros((1, 1, 1), np.int32), np.zeros((1, 1, 1), np.float32)
        f.attrs["cache_fingerprint"] = "not this cache"
    args = ["--cache", cache, "--out", str(tmp_path / "s")] + MODEL
    assert train.main(args + ["--teacher", str(other)]) == 2
    assert f"--teacher {other} was written for another cache" in capsys.readouterr().err
    (tmp_path / "garbage.h5").write_text("not hdf5")
    assert train.main(args + ["--teacher", str(tmp_path / "garbage.h5")]) == 2
    assert "not a teacher file" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()             # refused before the run folder was made
    for bad, message in ([["--teacher-weight", "2"], "give --teacher FILE too"],
                         [["--teacher", str(tmp_path / "missing.h5")], "missing.h5: no such file"]):
        with pytest.raises(SystemExit):
            train.main(args + bad)
        assert message in capsys.readouterr().err


def test_the_command_line_refuses_a_model_of_another_vocabulary(run, tmp_path, capsys):
    folder, cache = run
    params, config, meta = load_model(folder / "best.h5")
    save_checkpoint(tmp_path / "other.h5", params, {}, dict(meta, vocab=meta["vocab"][::-1]))
    assert main([str(tmp_path / "other.h5"), "--cache", cache, "--out", str(tmp_path / "t.h5"),
                 "--quiet"]) == 2
    assert "its vocabulary is not the one of" in capsys.readouterr().err
    assert not (tmp_path / "t.h5").exists()
    assert main([str(folder / "best.h5"), "--cache", cache, "--out", str(tmp_path / "t.h5"),
                 "--top-k", "0", "--quiet"]) == 2
    assert "--top-k must lie in [1, " in capsys.readouterr().err
    assert main([str(folder / "best.h5"), "--cache", cache, "--out", str(tmp_path / "t.h5"),
                 "--temperature", "0", "--quiet"]) == 2
    assert "--temperature must be above 0, got 0.0" in capsys.readouterr().err
    assert not (tmp_path / "t.h5").exists()



def test_a_write_that_fails_leaves_neither_the_file_nor_its_temporary(run, tmp_path, monkeypatch):
    folder, cache = run
    params, config, _ = load_model(folder / "best.h5")

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")
    monkeypatch.setattr(h5py.Group, "create_dataset", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_teacher([(params, config)], cache, tmp_path / "teacher.h5", progress=False)
    assert list(tmp_path.iterdir()) == []
