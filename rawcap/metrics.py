"""Caption metrics computed the way coco-caption (pycocoevalcap) computes them.

    references   [[tokens, tokens, ...], ...]   every reference caption of each image
    hypotheses   [tokens, ...]                  the one generated caption of each image
    tokens       ["a", "dog", "runs"]           already tokenized, lower case

BLEU-1..4, ROUGE-L and CIDEr-D are written out here and agree with pycocoevalcap's Bleu, Rouge
and Cider to rounding; METEOR is a Java program, so it is only ever borrowed from
pycocoevalcap, when both it and `java` are installed (see `meteor_available`).

Every score is on the 0-1 scale (papers print 100x): BLEU, ROUGE-L and METEOR lie in [0, 1].
CIDEr-D is kept exactly as coco-caption reports it (e.g. 0.85): its definition multiplies by
10, so it lies in [0, 10] and a good captioner can go above 1.
"""
import importlib.util
import math
import shutil
import warnings
from collections import Counter

import numpy as np

METRIC_SCALE = "0-1"
TINY, SMALL = 1e-15, 1e-9     # coco's BLEU smoothing: 0 correct of 0 guessed is 1e-6, not 0/0
ROUGE_BETA = 1.2              # ROUGE-L weighs recall 1.2 times as much as precision
CIDER_N, CIDER_SIGMA = 4, 6.0  # CIDEr-D: 1- to 4-grams, Gaussian length penalty of width 6 words
LABELS = {"bleu1": "BLEU-1", "bleu2": "BLEU-2", "bleu3": "BLEU-3", "bleu4": "BLEU-4",
          "meteor": "METEOR", "rouge_l": "ROUGE-L", "cider": "CIDEr-D"}


def check_captions(references, hypotheses):
    """Raise a ValueError naming the argument unless each image has one caption and >= 1 reference.

    A generated caption may be empty (it scores 0); a reference caption may not."""
    if len(references) != len(hypotheses):
        raise ValueError(f"references has {len(references)} images but hypotheses has "
                         f"{len(hypotheses)}: give one generated caption per image")
    if not hypotheses:
        raise ValueError("hypotheses is empty: there are no images to score")
    for i, (refs, hyp) in enumerate(zip(references, hypotheses)):
        if isinstance(hyp, str):
            raise ValueError(f"hypotheses[{i}] is a str; give a list of tokens (caption.split())")
        if isinstance(refs, str) or any(isinstance(ref, str) for ref in refs):
            raise ValueError(f"references[{i}] must be a list of token lists (every reference "
                             f"caption of image {i}), got {refs!r}")
        if len(refs) == 0:
            raise ValueError(f"references[{i}] is empty: image {i} has no reference caption")
        for j, ref in enumerate(refs):
            if len(ref) == 0:
                raise ValueError(f"references[{i}][{j}] is an empty caption: a reference needs "
                                 f"words")


def ngrams(tokens, n):
    """The n-grams of `tokens` (as tuples) and how often each occurs."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu(references, hypotheses, max_n=4):
    """Corpus BLEU-1..max_n (Papineni et al. 2002) -> [BLEU-1, ..., BLEU-max_n].

    Clipped n-gram counts are summed over the corpus before dividing:

        p_n = sum_images sum_g min(c_hyp(g), max_ref c_ref(g)) / sum_images max(|hyp| - n + 1, 0)
        BP  = exp(1 - r / c) if c < r else 1      c = sum |hyp|,  r = sum of closest |ref|
        BLEU-N = BP (p_1 p_2 ... p_N)^(1/N)

    The closest reference length is the one nearest |hyp|, the shorter on a tie. As in coco,
    p_n = (correct + 1e-15) / (guessed + 1e-9) and c / r = (c + 1e-15) / (r + 1e-9), so nothing
    divides by zero: a corpus of empty captions scores 0, and when every caption is shorter than
    n words p_n is 1e-6 instead of 0/0.
    """
    check_captions(references, hypotheses)
    if max_n < 1:
        raise ValueError(f"max_n must be at least 1, got {max_n}")
    totals = sum(bleu_counts(refs, hyp, max_n) for refs, hyp in zip(references, hypotheses))
    return [float(score) for score in bleu_from_counts(totals)]


def bleu_counts(refs, hyp, max_n=4):
    """One image's share of corpus BLEU -> float array [2 + 2 max_n]:
    c = |hyp|, r = the closest reference length, then correct_n, guessed_n for n = 1..max_n
    (the terms `bleu` sums over the images)."""
    counts = [len(hyp), min((len(ref) for ref in refs), key=lambda n: (abs(n - len(hyp)), n))]
    for n in range(1, max_n + 1):
        ref_counts = [ngrams(ref, n) for ref in refs]
        counts += [sum(min(count, max(c[gram] for c in ref_counts))
                       for gram, count in ngrams(hyp, n).items()),
                   max(len(hyp) - n + 1, 0)]
    return np.array(counts, dtype=float)


def bleu_from_counts(totals):
    """BLEU-1..max_n from `bleu_counts` summed over the images: totals[..., 2 + 2 max_n] ->
    scores[..., max_n]. Leading axes are kept: one row per resample of a bootstrap (rawcap.compare)."""
    totals = np.asarray(totals, dtype=float)
    hyp_length, ref_length = totals[..., 0], totals[..., 1]
    correct, guessed = totals[..., 2::2], totals[..., 3::2]
    products = np.cumprod((correct + TINY) / (guessed + SMALL), axis=-1)     # p_1 ... p_n
    scores = products ** (1 / np.arange(1, correct.shape[-1] + 1))
    ratio = (hyp_length + TINY) / (ref_length + SMALL)
    penalty = np.exp(1 - 1 / np.minimum(ratio, 1))                    # 1 where c >= r
    return scores * penalty[..., None]


def lcs_length(a, b):
    """Length of the longest common subsequence of two token lists, by dynamic programming:

        L[i][j] = L[i-1][j-1] + 1            if a_i = b_j
                  max(L[i-1][j], L[i][j-1])  otherwise        (L[0][j] = L[i][0] = 0)
    """
    previous = [0] * (len(b) + 1)                    # row i - 1 of L
    for word in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if word == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(references, hypotheses):
    """ROUGE-L (Lin 2004), as coco-caption takes it: the mean over images of

        P = max_ref LCS(hyp, ref) / |hyp|     R = max_ref LCS(hyp, ref) / |ref|
        F = (1 + beta^2) P R / (R + beta^2 P)      beta = 1.2   (0 when P or R is 0)

    P and R are maximised separately, so they may come from different references.
    """
    check_captions(references, hypotheses)
    scores = []
    for refs, hyp in zip(references, hypotheses):
        common = [lcs_length(ref, hyp) for ref in refs]
        precision = max(lcs / max(len(hyp), 1) for lcs in common)   # an empty hyp: 0, not 0/0
        recall = max(lcs / len(ref) for lcs, ref in zip(common, refs))
        if precision == 0 or recall == 0:
            scores.append(0.0)
        else:
            scores.append((1 + ROUGE_BETA ** 2) * precision * recall
                          / (recall + ROUGE_BETA ** 2 * precision))
    return float(np.mean(scores))


def tfidf(tokens, document_frequency, log_images):
    """A caption's TF-IDF vectors g^n, one per n = 1..4 ({n-gram: weight}), and their norms.

        g^n_k(caption) = (count of n-gram k in the caption) * log(I / max(df_k, 1))

    over I images, df_k of whose references contain n-gram k: the weight is 0 for an n-gram
    every image has, and largest for one no reference has.
    """
    vectors = [{gram: count * (log_images - math.log(max(document_frequency[gram], 1)))
                for gram, count in ngrams(tokens, n).items()} for n in range(1, CIDER_N + 1)]
    norms = [math.sqrt(sum(weight * weight for weight in vector.values())) for vector in vectors]
    return vectors, norms


class CiderD:
    """CIDEr-D of one caption at a time against fixed references (the reward of self-critical
    training, rawcap.scst), with document frequencies from these references:

        scorer = CiderD(references)          # references[i]: the reference token lists of image i
        scorer.score(i, hyp)                 # hyp's CIDEr-D against image i's references

    The references' TF-IDF vectors are computed once. `cider_d` is the mean of `score` over a
    set scored against its own references; here the set (and so the IDF) stays the same
    whatever is scored, e.g. every training image's references.
    """

    def __init__(self, references):
        if not references or any(not refs for refs in references):
            raise ValueError("CiderD: every image needs at least one reference")
        self.document_frequency = Counter()
        for refs in references:
            self.document_frequency.update({gram for ref in refs for n in range(1, CIDER_N + 1)
                                            for gram in ngrams(ref, n)})
        self.log_images = math.log(len(references))
        self.references = [[(tfidf(ref, self.document_frequency, self.log_images), len(ref))
                            for ref in refs] for refs in references]

    def __len__(self):
        return len(self.references)

    def score(self, image, hyp):
        """CIDEr-D of token list `hyp` against the references of image number `image`."""
        hyp_vectors, hyp_norms = tfidf(hyp, self.document_frequency, self.log_images)
        per_n = [0.0] * CIDER_N                      # summed over the references
        refs = self.references[image]
        for (ref_vectors, ref_norms), ref_length in refs:
            # coco counts bigrams, |caption| - 1, for the lengths: the same difference unless
            # hyp is empty, and then every cosine is 0 anyway
            penalty = math.exp(-(len(hyp) - ref_length) ** 2 / (2 * CIDER_SIGMA ** 2))
            for n in range(CIDER_N):
                h, r = hyp_vectors[n], ref_vectors[n]
                dot = sum(min(weight, r.get(gram, 0.0)) * r.get(gram, 0.0)
                          for gram, weight in h.items())
                norm = hyp_norms[n] * ref_norms[n]   # 0 only if one vector is all 0, so dot is 0
                per_n[n] += (dot / norm if norm > 0 else 0.0) * penalty
        return 10.0 * float(np.mean(per_n)) / len(refs)


def cider_d(references, hypotheses):
    """CIDEr-D (Vedantam et al. 2015), exactly as coco-caption's Cider computes it:

        CIDEr-D = mean over images of  10 / (N M) sum_{M refs} sum_{n=1..N} penalty * cos_n
        cos_n   = sum_k min(g^n_k(hyp), g^n_k(ref)) g^n_k(ref) / (|g^n(hyp)| |g^n(ref)|)
        penalty = exp(-(|hyp| - |ref|)^2 / (2 sigma^2))

    with N = 4, sigma = 6 words and g^n from `tfidf`. The "D" is the clipping min(g(hyp), g(ref)),
    so that repeating a rare word does not pay, and the length penalty. Document frequencies
    come from the references of the set being scored, so a score depends on the whole set
    (a single image scores 0: every IDF is log(1/1) = 0).
    """
    check_captions(references, hypotheses)
    scorer = CiderD(references)
    return float(np.mean([scorer.score(i, hyp) for i, hyp in enumerate(hypotheses)]))


def meteor_available():
    """-> (True, "") when METEOR can run, else (False, why not). METEOR 1.5 needs pycocoevalcap
    (which ships the jar) and a `java` on the PATH."""
    if importlib.util.find_spec("pycocoevalcap") is None:
        return False, "pycocoevalcap is not installed (pip install pycocoevalcap)"
    if shutil.which("java") is None:
        return False, "java is not on the PATH (METEOR 1.5 is a Java program)"
    return True, ""


def meteor_score(references, hypotheses):
    """Corpus METEOR 1.5 from pycocoevalcap's wrapper of the jar (a Java subprocess)."""
    from pycocoevalcap.meteor.meteor import Meteor
    check_captions(references, hypotheses)
    scorer = Meteor()
    gts = {i: [" ".join(ref) for ref in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(hyp)] for i, hyp in enumerate(hypotheses)}
    score, _ = scorer.compute_score(gts, res)
    del scorer                                       # its __del__ stops the Java process
    return float(score)


def score_captions(references, hypotheses, meteor=False):
    """Every metric on one set -> {bleu1, bleu2, bleu3, bleu4, [meteor], rouge_l, cider}.

    With meteor=True, METEOR is added when `meteor_available()`; otherwise a warning says why
    it was left out, and the other scores are returned as usual.
    """
    scores = dict(zip(("bleu1", "bleu2", "bleu3", "bleu4"), bleu(references, hypotheses)))
    if meteor:
        available, reason = meteor_available()
        if available:
            scores["meteor"] = meteor_score(references, hypotheses)
        else:
            warnings.warn(f"METEOR left out: {reason}", stacklevel=2)
    scores["rouge_l"] = rouge_l(references, hypotheses)
    scores["cider"] = cider_d(references, hypotheses)
    return scores


def format_table(scores, protocol):
    """The scores as an aligned two-row table, under a line saying how they were made.

    protocol: split, images, references per image, decoding (greedy / beam) and scorer, e.g.
    "test split, 1000 images, 5 references per image, beam 3 decoding, rawcap.metrics".
    """
    labels = [LABELS.get(key, key) for key in scores]
    values = [f"{value:.4f}" for value in scores.values()]
    widths = [max(len(label), len(value)) for label, value in zip(labels, values)]
    return "\n".join([
        f"protocol: {protocol}",
        f"scale: {METRIC_SCALE} (CIDEr-D as coco-caption reports it: x10 by definition, up to 10)",
        "  ".join(label.rjust(width) for label, width in zip(labels, widths)),
        "  ".join(value.rjust(width) for value, width in zip(values, widths)),
    ])
