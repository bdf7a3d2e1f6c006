"""python -m rawcap.data {shapes,prepare,stats,distill}: make the built-in dataset, build a cache,
describe it, give its train images a teacher's captions."""
import argparse
import sys
import time

from ..cli import existing_dir, existing_file, positive_int
from .cache import prepare, stats
from .distill import distill
from .flickr8k import LAYOUTS, DataError
from .images import ImageError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("prepare", help="preprocess a Flickr8k-style directory into one HDF5 cache",
                            description="Read captions and splits in any of the three Flickr8k "
                            "layouts, preprocess every image, build the vocabulary on the train "
                            "split and write one HDF5 file (reused when nothing changed).")
    p.add_argument("--data-dir", required=True, type=existing_dir, help="the dataset directory (caption file + image folder)")
    p.add_argument("--out", required=True, help="the cache file to write, e.g. data/flickr8k.h5")
    p.add_argument("--size", type=positive_int, default=128, help="image side S (default 128)")
    p.add_argument("--resize", default="crop", choices=["crop", "squash"],
                   help="how images become S x S: crop = shorter side to S, then the centre square "
                        "(aspect kept); squash = the whole image to S x S (aspect not kept). "
                        "Recorded in the cache and the model; caption does the same (default crop)")
    p.add_argument("--layout", default="auto", choices=["auto", *LAYOUTS],
                   help="caption layout (default: detected; flickr8k, then kaggle, then karpathy)")
    p.add_argument("--min-count", type=positive_int, default=5,
                   help="keep words seen at least this often in train; others become <unk> (default 5)")
    p.add_argument("--max-length", type=positive_int, default=20,
                   help="truncate captions to this many words, and count them (default 20)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip and count bad entries (malformed lines, empty captions, missing or "
                        "unreadable images) instead of stopping at the first")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the split made when a kaggle layout has no split files (default 0)")
    p.add_argument("--workers", type=positive_int, default=None, help="image loading threads (default: all cores)")

    p = commands.add_parser("stats", help="describe a cache: images per split, vocabulary, lengths, <unk>")
    p.add_argument("cache", type=existing_file, help="a file written by prepare")

    p = commands.add_parser("distill", help="a copy of a cache whose train captions are a teacher's",
                            description="Sequence-level distillation (Kim & Rush 2016): copy the "
                            "cache, replacing each train image's captions by the caption a teacher "
                            "wrote for it (python -m rawcap.evaluate TEACHER --split train --out DIR "
                            "writes DIR/captions_train.json). Train a student on the copy with "
                            "python -m rawcap.train --cache OUT.")
    p.add_argument("cache", type=existing_file, help="a file written by prepare")
    p.add_argument("captions", type=existing_file,
                   help="the teacher's captions of every train image: file name -> caption (JSON)")
    p.add_argument("--out", required=True, help="the cache file to write")
    p.add_argument("--keep-references", action="store_true",
                   help="add the teacher's caption to each train image's references instead of "
                        "replacing them")

    p = commands.add_parser("shapes", help="generate the built-in dataset of synthetic scenes",
                            description="Scenes of 1-3 coloured shapes with 5 reference captions "
                            "each, written in the Flickr8k layout (images/, Flickr8k.token.txt, "
                            "split files). Deterministic from the seed; reused when it exists.")
    p.add_argument("--out", required=True, help="the directory to write, e.g. data/shapes")
    p.add_argument("--images", type=positive_int, default=6000, help="number of images (default 6000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=positive_int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")

    args = parser.parse_args(argv)
    start = time.time()
    try:
        if args.command == "prepare":
            prepare(args.data_dir, args.out, size=args.size, min_count=args.min_count,
                    max_length=args.max_length, layout=args.layout, skip_bad=args.skip_bad,
                    split_seed=args.split_seed, workers=args.workers, resize=args.resize)
        elif args.command == "distill":
            images, added = distill(args.cache, args.captions, args.out, args.keep_references)
            print(f"wrote {args.out}: {added} teacher captions for {images} train images"
                  f"{' beside their references' if args.keep_references else ''}")
        elif args.command == "stats":
            print("\n".join(stats(args.cache)))
        else:
            from .shapes import generate_shapes
            summary = generate_shapes(args.out, n_images=args.images, seed=args.seed,
                                      image_size=args.size, workers=args.workers)
            print(summary)
    except (DataError, ImageError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command != "stats":
        print(f"done in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
