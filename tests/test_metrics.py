"""The caption metrics: values worked out by hand, edge cases, bad input, and pycocoevalcap."""
import contextlib
import io
import math
import random
import re
import sys
import types

import pytest

from rawcap import metrics
from rawcap.metrics import (bleu, cider_d, format_table, lcs_length, meteor_available, rouge_l,
                            score_captions)


def words(*captions):
    """"a dog", "a cat" -> [["a", "dog"], ["a", "cat"]]"""
    return [caption.split() for caption in captions]


# ---- BLEU ---------------------------------------------------------------------------------------

def test_bleu_of_a_caption_equal_to_its_only_reference_is_1():
    refs, hyps = [words("a dog runs on the grass")], words("a dog runs on the grass")
    assert bleu(refs, hyps) == pytest.approx([1, 1, 1, 1], abs=1e-9)


def test_bleu_worked_example_with_the_brevity_penalty():
    # hyp "the cat sat on mat" (c = 5) against "the cat sat on the mat" (r = 6):
    #   1-grams 5/5;  2-grams the cat, cat sat, sat on (not "on mat") 3/4
    #   3-grams the cat sat, cat sat on 2/3;  4-grams the cat sat on 1/2;  BP = exp(1 - 6/5)
    bp = math.exp(-0.2)
    expected = [bp, bp * (3 / 4) ** (1 / 2), bp * (3 / 4 * 2 / 3) ** (1 / 3),
                bp * (3 / 4 * 2 / 3 * 1 / 2) ** (1 / 4)]
    assert bleu([words("the cat sat on the mat")], words("the cat sat on mat")) == \
        pytest.approx(expected, rel=1e-8)


def test_bleu_clips_a_repeated_word_to_its_count_in_a_reference():
    # Papineni's example, shortened: "the" is at most twice in one reference, so p_1 = 2/4;
    # closest reference length to 4 is 6 (not 7), so BP = exp(1 - 6/4); no bigram matches
    refs = [words("the cat is on the mat", "there is a cat on the mat")]
    scores = bleu(refs, words("the the the the"))
    assert scores[0] == pytest.approx(0.5 * math.exp(-0.5), rel=1e-8)
    assert 0 <= scores[1] < 1e-7


def test_bleu_sums_counts_over_the_corpus_before_dividing():
    # p_1 = (2 + 0) / (2 + 4), c = r = 6; the mean of per-image BLEU-1 would be (1 + 0) / 2
    refs = [words("a dog"), words("a cat on grass")]
    assert bleu(refs, words("a dog", "the red ball rolls"))[0] == pytest.approx(1 / 3, rel=1e-8)


def test_bleu_takes_the_closest_reference_length_and_the_shorter_on_a_tie():
    hyp = words("a dog runs on grass")                     # 5 words, each in a reference
    tie = [words("a dog runs on", "a dog runs on green grass")]               # 4 and 6
    assert bleu(tie, hyp)[0] == pytest.approx(1, rel=1e-8)                    # r = 4: BP = 1
    closest = [words("a dog", "a dog runs on the grass", "a dog runs on the green grass")]
    assert bleu(closest, hyp)[0] == pytest.approx(math.exp(1 - 6 / 5), rel=1e-8)  # r = 6


def test_bleu_of_a_caption_longer_than_every_reference_has_no_penalty():
    # 3 of the 6 words are in the reference; c = 6 > r = 3, so BP = 1 and BLEU-1 = 1/2
    assert bleu([words("a dog runs")], words("a dog runs on the grass"))[0] == \
        pytest.approx(0.5, rel=1e-8)


def test_bleu_max_n_gives_that_many_scores_and_must_be_positive():
    refs, hyps = [words("a dog runs")], words("a dog runs")
    assert len(bleu(refs, hyps, max_n=2)) == 2
    with pytest.raises(ValueError, match="max_n"):
        bleu(refs, hyps, max_n=0)


# ---- ROUGE-L ------------------------------------------------------------------------------------

def test_lcs_length_textbook_example():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4          # e.g. B C B A (CLRS 15.4)
    assert lcs_length([], list("ABC")) == 0


def test_rouge_l_worked_example():
    # LCS("the cat sat on mat", "the cat sat on the mat") = 5, P = 5/5, R = 5/6
    # F = (1 + 1.44) * 1 * 5/6 / (5/6 + 1.44 * 1) = 12.2 / 13.64
    score = rouge_l([words("the cat sat on the mat")], words("the cat sat on mat"))
    assert score == pytest.approx(12.2 / 13.64, rel=1e-12)


def test_rouge_l_takes_the_best_precision_and_recall_from_any_reference():
    # "a brown dog sleeps" against "a dog": LCS 2, P = 2/4, R = 2/2
    #                      against "a big brown dog sleeps": LCS 4, P = 4/4, R = 4/5
    # max P = 1 and max R = 1 come from different references, so F = 1 though neither matches
    refs = [words("a dog", "a big brown dog sleeps")]
    assert rouge_l(refs, words("a brown dog sleeps")) == pytest.approx(1, rel=1e-12)


def test_rouge_l_is_the_mean_over_images():
    refs = [words("a dog runs"), words("a cat")]
    assert rouge_l(refs, words("a dog runs", "the red ball")) == pytest.approx(0.5, rel=1e-12)


# ---- CIDEr-D ------------------------------------------------------------------------------------
# Two images, one reference each: "a" is in both (IDF log(2/2) = 0), every other n-gram in one
# (IDF log 2). Image 1 is "a cat" captioned perfectly: cosines [1, 1, 0, 0] (no 3- or 4-grams),
# so 10 * mean = 5.

def test_cider_d_worked_example():
    # image 0: "a bird" shares only "a" (weight 0) with its reference "a dog": cosines all 0
    refs = [words("a dog"), words("a cat")]
    assert cider_d(refs, words("a bird", "a cat")) == pytest.approx((0 + 5) / 2, rel=1e-12)


def test_cider_d_clips_a_repeated_word():
    # "dog dog" vs "a dog": 1-gram vectors (dog: 2 log2) and (dog: log2, a: 0)
    # clipped dot min(2 log2, log2) log2 = log2^2, norms 2 log2 and log2: cosine 1/2 (unclipped 1)
    # 2-grams "dog dog" vs "a dog": 0.   Image 0: 10 * (1/2) / 4 = 1.25
    refs = [words("a dog"), words("a cat")]
    assert cider_d(refs, words("dog dog", "a cat")) == pytest.approx((1.25 + 5) / 2, rel=1e-12)


def test_cider_d_gaussian_length_penalty():
    # "dog" vs "a dog": 1-gram cosine 1, no 2-grams; lengths differ by 1: exp(-1 / (2 * 6^2))
    refs = [words("a dog"), words("a cat")]
    image0 = 10 * math.exp(-1 / 72) / 4
    assert cider_d(refs, words("dog", "a cat")) == pytest.approx((image0 + 5) / 2, rel=1e-12)


def test_cider_d_averages_over_the_references_of_an_image():
    # image 0 has the perfect reference "a dog" and "a cow", which shares nothing weighted: 5 / 2
    refs = [words("a dog", "a cow"), words("a cat")]
    assert cider_d(refs, words("a dog", "a cat")) == pytest.approx((2.5 + 5) / 2, rel=1e-12)


def test_cider_d_of_a_single_image_is_0():
    # every n-gram is in the references of 1 image of 1: every IDF is log(1/1) = 0
    assert cider_d([words("a dog runs")], words("a dog runs")) == 0


def test_a_perfect_corpus_scores_bleu_1_rouge_1_and_cider_d_10():
    captions = words("a dog runs on the grass", "a cat sits on a mat", "two men ride red bikes")
    scores = score_captions([[c] for c in captions], captions)
    assert scores == pytest.approx(dict(bleu1=1, bleu2=1, bleu3=1, bleu4=1, rouge_l=1, cider=10),
                                   abs=1e-8)


# ---- empty captions and bad input ---------------------------------------------------------------

def test_empty_captions_score_0_without_nan():
    refs = [words("a dog runs"), words("a cat sits")]
    scores = score_captions(refs, [[], []])
    assert scores == dict(bleu1=0, bleu2=0, bleu3=0, bleu4=0, rouge_l=0, cider=0)


def test_an_empty_caption_counts_as_0_in_the_means():
    refs = [words("a dog"), words("a cat")]
    assert rouge_l(refs, [["a", "dog"], []]) == pytest.approx(0.5, rel=1e-12)
    assert cider_d(refs, [["a", "dog"], []]) == pytest.approx((5 + 0) / 2, rel=1e-12)
    assert bleu(refs, [["a", "dog"], []])[0] == pytest.approx(math.exp(1 - 4 / 2), rel=1e-8)


@pytest.mark.parametrize("references, hypotheses, message", [
    ([words("a dog")], words("a dog", "a cat"), "references has 1 images but hypotheses has 2"),
    ([], [], "hypotheses is empty"),
    ([words("a dog"), []], words("a dog", "a cat"), r"references\[1\] is empty"),
    ([words("a dog", "")], words("a dog"), r"references\[0\]\[1\] is an empty caption"),
    ([["a", "dog"]], words("a dog"), r"references\[0\] must be a list of token lists"),
    ([words("a dog")], ["a dog"], r"hypotheses\[0\] is a str"),
])
def test_bad_input_names_the_argument(references, hypotheses, message):
    for metric in (bleu, rouge_l, cider_d, score_captions):
        with pytest.raises(ValueError, match=message):
            metric(references, hypotheses)


# ---- score_captions, METEOR, format_table -------------------------------------------------------

def test_score_captions_gathers_the_metrics_in_coco_order():
    refs, hyps = [words("a dog runs", "a dog is running"), words("a cat")], words("a dog", "a cat")
    scores = score_captions(refs, hyps)
    assert list(scores) == ["bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider"]
    assert [scores[f"bleu{n}"] for n in range(1, 5)] == bleu(refs, hyps)
    assert scores["rouge_l"] == rouge_l(refs, hyps) and scores["cider"] == cider_d(refs, hyps)
    assert all(type(value) is float for value in scores.values())


def test_meteor_available_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(metrics.importlib.util, "find_spec", lambda name: object())  # installed
    monkeypatch.setattr(metrics.shutil, "which", lambda name: None)                  # no java
    available, reason = meteor_available()
    assert not available and "java" in reason
    monkeypatch.setattr(metrics.importlib.util, "find_spec", lambda name: None)     # not installed
    available, reason = meteor_available()
    assert not available and "pip install pycocoevalcap" in reason


def test_score_captions_leaves_meteor_out_with_a_warning_when_it_cannot_run(monkeypatch):
    monkeypatch.setattr(metrics, "meteor_available", lambda: (False, "java is not on the PATH"))
    with pytest.warns(UserWarning, match="METEOR left out: java is not on the PATH"):
        scores = score_captions([words("a dog")], words("a dog"), meteor=True)
    assert "meteor" not in scores


def test_score_captions_hands_meteor_coco_style_dicts(monkeypatch):
    # a stand-in for pycocoevalcap's Meteor, which needs Java: it records what it is given
    seen = {}

    class Meteor:
        def compute_score(self, gts, res):
            seen.update(gts=gts, res=res)
            return 0.25, [0.25, 0.25]

    module = types.ModuleType("pycocoevalcap.meteor.meteor")
    module.Meteor = Meteor
    monkeypatch.setitem(sys.modules, "pycocoevalcap.meteor.meteor", module)
    monkeypatch.setattr(metrics, "meteor_available", lambda: (True, ""))
    scores = score_captions([words("a dog", "a big dog"), words("a cat")], words("a dog", ""),
                            meteor=True)
    assert seen == dict(gts={0: ["a dog", "a big dog"], 1: ["a cat"]}, res={0: ["a dog"], 1: [""]})
    assert list(scores) == ["bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider"]
    assert scores["meteor"] == 0.25


def test_format_table_states_the_protocol_and_aligns_the_columns():
    scores = dict(bleu1=0.61234, bleu4=0.2, rouge_l=0.45, cider=0.85)
    protocol = "test split, 1000 images, 5 references per image, beam 3 decoding, rawcap.metrics"
    lines = format_table(scores, protocol).splitlines()
    assert lines[0] == f"protocol: {protocol}"
    assert "0-1" in lines[1] and "CIDEr-D" in lines[1]
    assert lines[2].split() == ["BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr-D"]
    assert lines[3].split() == ["0.6123", "0.2000", "0.4500", "0.8500"]    # CIDEr-D as is
    ends = [[word.end() for word in re.finditer(r"\S+", line)] for line in lines[2:]]
    assert ends[0] == ends[1]                                  # each number ends under its name


# ---- against pycocoevalcap ----------------------------------------------------------------------

def random_corpus(seed, n_images=50, max_refs=5):
    """Captions over a 12-word vocabulary (so n-grams repeat), with 1..max_refs references per
    image; hypotheses are edited references, random words, or empty."""
    rng = random.Random(seed)
    vocab = "a the dog cat man runs on grass red ball sits in".split()
    sentence = lambda: [rng.choice(vocab) for _ in range(rng.randint(1, 12))]
    references = [[sentence() for _ in range(rng.randint(1, max_refs))] for _ in range(n_images)]
    hypotheses = []
    for refs in references:
        kind = rng.random()
        if kind < 0.5:                                  # a reference with one word replaced
            hyp = list(rng.choice(refs))
            hyp[rng.randrange(len(hyp))] = rng.choice(vocab)
            hypotheses.append(hyp)
        elif kind < 0.95:
            hypotheses.append(sentence())
        else:
            hypotheses.append([])
    return references, hypotheses


@pytest.mark.parametrize("seed, max_refs", [(0, 5), (1, 5), (2, 1)])
def test_agrees_with_pycocoevalcap(seed, max_refs):
    pytest.importorskip("pycocoevalcap", reason="the cross-check needs pycocoevalcap (pip "
                                                "install pycocoevalcap); it is not a dependency")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    references, hypotheses = random_corpus(seed, max_refs=max_refs)
    gts = {i: [" ".join(ref) for ref in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(hyp)] for i, hyp in enumerate(hypotheses)}
    with contextlib.redirect_stdout(io.StringIO()):                 # Bleu prints its counts
        coco_bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    coco_rouge, _ = Rouge().compute_score(gts, res)
    coco_cider, _ = Cider().compute_score(gts, res)

    assert bleu(references, hypotheses) == pytest.approx(coco_bleu, rel=0, abs=1e-9)
    assert rouge_l(references, hypotheses) == pytest.approx(coco_rouge, rel=0, abs=1e-9)
    assert cider_d(references, hypotheses) == pytest.approx(coco_cider, rel=0, abs=1e-6)
    assert min(coco_bleu) > 0.01 and coco_cider > 0.1             # the corpus tests something
