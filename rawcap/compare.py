"""Is model B's captioning better than model A's on the same images, or within the noise?

    python -m rawcap.evaluate RUN_A --split val --beam 5 --length-penalty 0 --out A
    python -m rawcap.evaluate RUN_B --split val --beam 5 --length-penalty 0 --out B
    python -m rawcap.compare A/captions_val.json B/captions_val.json --cache data/flickr8k-....h5

A score on 1000 images is itself a sample: another 1000 images like them would give another
score. The paired bootstrap (Koehn 2004) measures how much, from the images at hand. Draw the
I images with replacement, R times; on each draw score both models on the same drawn images
and take B - A:

    BLEU-4    from the drawn images' summed n-gram counts (metrics.bleu_counts: corpus BLEU
              of the draw, an image drawn twice counted twice)
    CIDEr-D   the mean of the drawn images' own CIDEr-D (document frequencies from the
              references of all I images, as in metrics.cider_d)

The 2.5th and 97.5th percentiles of the R differences are the 95% interval of B - A; the share
of draws in which B scores higher says how often B would come out ahead on another set of
images like these. An interval that holds 0 means the images cannot tell the two apart.
"""
import argparse
import json
import sys

import numpy as np

from .cli import HelpFormatter, existing_file, positive_int
from .data.cache import read_references
from .metrics import CiderD, bleu_counts, bleu_from_counts

METRICS = ("BLEU-4", "CIDEr-D")


def paired_bootstrap(references, hypotheses_a, hypotheses_b, samples=10000, seed=0):
    """Both models' scores on the same images, and the bootstrap of their difference
    -> {metric: {a, b, difference, low, high, b_better}} for BLEU-4 and CIDEr-D.

    references[i]: image i's reference token lists; hypotheses_a[i], hypotheses_b[i]: the two
    models' token lists for it. low, high: the 95% interval of B - A; b_better: the share of
    the `samples` draws in which B scores higher."""
    if not (len(references) == len(hypotheses_a) == len(hypotheses_b)) or not references:
        raise ValueError(f"paired_bootstrap: {len(references)} images of references, "
                         f"{len(hypotheses_a)} and {len(hypotheses_b)} captions: give each image "
                         f"one caption of each model")
    cider = CiderD(references)
    per_image = {metric: [] for metric in METRICS}     # metric -> [A's, B's] per-image values
    for hypotheses in (hypotheses_a, hypotheses_b):
        per_image["BLEU-4"].append(
            np.array([bleu_counts(refs, hyp) for refs, hyp in zip(references, hypotheses)]))
        per_image["CIDEr-D"].append(np.array([cider.score(i, hyp) for i, hyp in enumerate(hypotheses)]))
    # A draw as weights: times[r, i] = how often draw r took image i (the I-image set itself
    # is times = 1 everywhere). A metric's score of a draw is then a weighted sum over images.
    images = len(references)
    score = {"BLEU-4": lambda times, rows: bleu_from_counts(times @ rows)[..., 3],
             "CIDEr-D": lambda times, rows: times @ rows / images}
    times = np.random.default_rng(seed).multinomial(images, np.full(images, 1 / images), samples)
    result = {}
    for metric in METRICS:
        a, b = per_image[metric]
        a_all, b_all = (float(score[metric](np.ones(images), rows)) for rows in (a, b))
        differences = score[metric](times, b) - score[metric](times, a)
        low, high = np.percentile(differences, [2.5, 97.5])
        result[metric] = dict(a=a_all, b=b_all, difference=b_all - a_all, low=float(low),
                              high=float(high), b_better=float((differences > 0).mean()))
    return result


def format_comparison(result, samples):
    """The comparison as an aligned table, one row per metric."""
    lines = [f"{'':8} {'A':>7} {'B':>7} {'B - A':>8}  {'95% interval':>19}  B higher in"]
    for metric, r in result.items():
        lines.append(f"{metric:8} {r['a']:7.4f} {r['b']:7.4f} {r['difference']:+8.4f}  "
                     f"[{r['low']:+.4f}, {r['high']:+.4f}]  {100 * r['b_better']:.1f}% of "
                     f"{samples} draws")
    return "\n".join(lines)


def read_captions(path):
    """evaluate's captions file -> {file name: caption}; ValueError naming the file if it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            captions = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a captions file ({e})") from None
    if not isinstance(captions, dict) or not captions or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in captions.items()):
        raise ValueError(f"{path}: not a captions file: evaluate writes a non-empty JSON object "
                         f"of file name -> caption")
    return captions


def references_of(cache, names, path):
    """The reference token lists of each image in `names`, from the cache; ValueError naming
    `path` (the captions file) for an image the cache does not have."""
    references, filenames = read_references(cache)
    by_name = {filenames[row]: refs for row, refs in references.items()}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f"{path}: {len(missing)} images are not in {cache}, e.g. {missing[0]}: "
                         f"give the cache the captions were made from")
    return [by_name[name] for name in names]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.compare", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter,
                                     epilog="The captions files are evaluate's captions_{split}.json "
                                            "of the same split (compare on val when choosing).")
    parser.add_argument("a", type=existing_file, help="model A's captions file")
    parser.add_argument("b", type=existing_file, help="model B's captions file")
    parser.add_argument("--cache", type=existing_file, required=True,
                        help="the cache holding the images' references (the one evaluate scored)")
    parser.add_argument("--samples", type=positive_int, default=10000, help="bootstrap draws R")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    args = parser.parse_args(argv)
    try:
        a, b = read_captions(args.a), read_captions(args.b)
        if a.keys() != b.keys():
            only = sorted(a.keys() ^ b.keys())[0]
            raise ValueError(f"{args.a} and {args.b} caption different images ({only} is in one "
                             f"only): give two files of the same split")
        names = sorted(a)
        references = references_of(args.cache, names, args.a)
        result = paired_bootstrap(references, [a[n].split() for n in names],
                                  [b[n].split() for n in names], args.samples, args.seed)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"A: {args.a}\nB: {args.b}\n{len(names)} images, paired bootstrap of {args.samples} draws")
    print(format_comparison(result, args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
