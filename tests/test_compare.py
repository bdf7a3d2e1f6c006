"""rawcap.compare: the paired bootstrap of two models' scores on the same images, and its CLI."""
import json

import numpy as np
import pytest

from data_fixtures import COLOUR_OF, NAMES, SPLIT_OF, write_dataset
from rawcap import compare
from rawcap.data.cache import prepare
from rawcap.metrics import bleu, bleu_counts, bleu_from_counts, cider_d

WORDS = "a the dog man runs on grass in water red blue".split()


def random_corpus(rng, images=30):
    """References (3 per image) and two sets of captions drawn from a small vocabulary."""
    def caption():
        return list(rng.choice(WORDS, rng.integers(2, 9)))
    references = [[caption() for _ in range(3)] for _ in range(images)]
    return references, [caption() for _ in range(images)], [caption() for _ in range(images)]


def test_bleu_from_counts_is_corpus_bleu_and_keeps_leading_axes():
    rng = np.random.default_rng(0)
    corpora = [random_corpus(rng)[:2] for _ in range(3)]
    totals = np.array([sum(bleu_counts(r, h) for r, h in zip(refs, hyps)) for refs, hyps in corpora])
    stacked = bleu_from_counts(totals)                      # [3 corpora, 4]
    for row, (refs, hyps) in zip(stacked, corpora):
        np.testing.assert_allclose(row, bleu(refs, hyps), rtol=1e-12)


def test_the_same_captions_differ_by_nothing_in_every_draw():
    references, hypotheses, _ = random_corpus(np.random.default_rng(1))
    result = compare.paired_bootstrap(references, hypotheses, hypotheses, samples=200)
    for r in result.values():
        assert r["difference"] == r["low"] == r["high"] == 0 and r["b_better"] == 0


def test_scores_are_the_metrics_and_a_clearly_better_model_wins_every_draw():
    references, worse, _ = random_corpus(np.random.default_rng(2))
    better = [refs[0] for refs in references]              # one of its own references
    result = compare.paired_bootstrap(references, worse, better, samples=500, seed=3)
    assert result["BLEU-4"]["a"] == pytest.approx(bleu(references, worse)[3], rel=1e-12)
    assert result["BLEU-4"]["b"] == pytest.approx(bleu(references, better)[3], rel=1e-12)
    assert result["CIDEr-D"]["a"] == pytest.approx(cider_d(references, worse), rel=1e-12)
    assert result["CIDEr-D"]["b"] == pytest.approx(cider_d(references, better), rel=1e-12)
    for r in result.values():
        assert 0 < r["low"] < r["difference"] < r["high"] and r["b_better"] == 1


def test_two_close_models_get_an_interval_around_their_difference():
    references, a, b = random_corpus(np.random.default_rng(4), images=60)
    first = compare.paired_bootstrap(references, a, b, samples=1000, seed=5)
    assert first == compare.paired_bootstrap(references, a, b, samples=1000, seed=5)
    for r in first.values():
        assert r["low"] < r["difference"] < r["high"] and 0 < r["b_better"] < 1
        assert r["low"] < 0 < r["high"]        # random captions of one vocabulary: no winner


def test_paired_bootstrap_needs_one_caption_per_image_from_each_model():
    references, a, b = random_corpus(np.random.default_rng(6))
    with pytest.raises(ValueError, match="one caption of each model"):
        compare.paired_bootstrap(references, a, b[:-1])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    write_dataset(root / "data")
    return prepare(root / "data", root / "cache.h5", size=16, min_count=1, progress=False,
                   log=lambda *a: None)


def write_captions(path, captions):
    path.write_text(json.dumps(captions))
    return str(path)


def test_cli_compares_two_captions_files_of_the_cache_images(cache, tmp_path, capsys):
    train = [name for name in NAMES if SPLIT_OF[name] == "train"]
    right = write_captions(tmp_path / "b.json", {n: f"a plain {COLOUR_OF[n]} square" for n in train})
    wrong = write_captions(tmp_path / "a.json", {n: "a plain square" for n in train})
    assert compare.main([wrong, right, "--cache", str(cache), "--samples", "100"]) == 0
    out = capsys.readouterr().out
    assert f"{len(train)} images, paired bootstrap of 100 draws" in out
    assert "100.0% of 100 draws" in out.splitlines()[-2]       # BLEU-4: B always higher


GOOD = {"img01.jpg": "a red square", "img02.jpg": "a blue square"}


@pytest.mark.parametrize("a, b, says", [
    (GOOD, {**GOOD, "img00.jpg": "a square"}, "caption different images (img00.jpg is in one only)"),
    ({**GOOD, "nowhere.jpg": "x"}, {**GOOD, "nowhere.jpg": "y"}, "a.json: 1 images are not in"),
    (GOOD, "{", "b.json: not a captions file"),
    (GOOD, ["a red square"], "b.json: not a captions file: evaluate writes a non-empty JSON object"),
], ids=["other images", "not in the cache", "not json", "a list"])
def test_cli_names_the_file_it_cannot_use(cache, tmp_path, capsys, a, b, says):
    paths = []
    for name, content in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
        paths.append(str(tmp_path / name))
    assert compare.main([*paths, "--cache", str(cache)]) == 2
    assert says in capsys.readouterr().err
