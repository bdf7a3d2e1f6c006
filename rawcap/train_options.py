"""The command line of python -m rawcap.train: its options, their help, and the checks that
involve several of them or the files they name (all made before anything is read or created)."""
import argparse
from pathlib import Path

from .backend import set_kernels
from .cli import (HelpFormatter, dropout_rate, existing_file, int_list, nonnegative_float,
                  nonnegative_int, positive_float, positive_int)
from .run_dir import check_free
from .student import load_layers

DEFAULT_EPOCHS = 5
DATASETS = ("shapes", "flickr8k", "flickr30k", "coco", "custom")
# What --resume may change; every other option is the run's own.
RESUME_OPTIONS = ("resume", "epochs", "quiet", "device", "kernels", "deterministic")
DATA_OPTIONS = ("data_dir", "image_size", "min_count", "max_length", "skip_bad", "resize")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m rawcap.train", description="Train the captioner.",
                                formatter_class=HelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", default="shapes", choices=DATASETS,
                   help="the built-in dataset, or a dataset in --data-dir in any layout rawcap.data "
                        "reads (Flickr8k's three, Karpathy's json of Flickr8k/Flickr30k/COCO, or "
                        "your own captions.tsv); the name is also the default run folder's")
    g.add_argument("--data-dir", help="the dataset folder, or your .tsv captions file (default "
                                      "data/shapes; required for the other datasets)")
    g.add_argument("--cache", type=existing_file,
                   help="train on this cache, made by python -m rawcap.data prepare, instead of "
                        "preparing one from --data-dir")
    g.add_argument("--image-size", type=positive_int,
                   help="image side S (default 64 for shapes, 128 for flickr8k)")
    g.add_argument("--min-count", type=positive_int, default=5,
                   help="vocabulary: minimum word count in train")
    g.add_argument("--max-length", type=positive_int, default=20,
                   help="captions are cut to this many words")
    g.add_argument("--skip-bad", action="store_true",
                   help="skip and count bad lines and unreadable images instead of stopping at the first")
    g.add_argument("--resize", default="crop", choices=["crop", "squash"],
                   help="how images become S x S in the cache: centre crop (aspect kept) or squash")
    g.add_argument("--augment", action="store_true",
                   help="shift training images by up to S/16 pixels and mirror half of them")
    g.add_argument("--zoom", type=float, default=1.0, metavar="Z",
                   help="with --augment: first cut each training image to a random square of "
                        "side S/z, z uniform in [1, Z], resized back to S (default 1: off)")
    g.add_argument("--colour-jitter", type=float, default=0.0, metavar="A",
                   help="with --augment: scale each training image's saturation, contrast and "
                        "brightness by factors uniform in [1-A, 1+A], hues kept (default 0: off)")
    g.add_argument("--train-on-val", action="store_true",
                   help="train on the train and val splits together: the final model of a recipe "
                        "already chosen on val (val scores then measure images the model has seen, "
                        "so no best.h5 is kept and test is scored with last.h5)")
    g = p.add_argument_group("run")
    g.add_argument("--out", help="the run folder (default runs/DATA, or runs/NAME for --cache "
                                 "NAME.h5); it must not hold a run")
    g.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (its files are deleted)")
    g.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last.h5, with its own options")
    g.add_argument("--init-from", metavar="CHECKPOINT", type=existing_file,
                   help="start a new run from these weights (a run's checkpoint or a shipped model, "
                        "e.g. rawcap/weights/flickr8k.h5: its left-out bag-of-words head starts fresh)")
    g.add_argument("--scst", action="store_true",
                   help="self-critical training: fine-tune the --init-from model on the CIDEr-D of "
                        "sampled captions against the train references, the greedy caption's as "
                        "baseline (give the same model options and a small --lr, e.g. 5e-5)")
    g.add_argument("--scst-samples", metavar="K", type=positive_int, default=1,
                   help="--scst: captions sampled per image")
    g.add_argument("--scst-baseline", default="greedy", choices=["greedy", "mean"],
                   help="--scst: what each sample's reward is compared with: the greedy caption's "
                        "(Rennie et al.), or the mean of the image's other samples (needs "
                        "--scst-samples 2 or more)")
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train")
    g.add_argument("--kernels", metavar="PINS",
                   help="pin kernel versions per op, e.g. lstm_pointwise=0,softmax_ce=1 or all=0 "
                        "(default: $RAWCAP_KERNELS, else each op's best; python -m rawcap.env lists them)")
    g.add_argument("--deterministic", action="store_true",
                   help="on a GPU, avoid kernels whose atomic adds make runs differ in the last bits "
                        "(the embedding backward sorts its tokens instead)")
    g.add_argument("--layers", metavar="FOLDER",
                   help="train with the functions of an exercise folder (python -m rawcap.exercises "
                        "make) in place of the textbook layers; their ops run version 0")
    g.add_argument("--seed", type=int, default=0, help="seed of the weights, batch order and dropout")
    g.add_argument("--epochs", type=positive_int,
                   help=f"epochs in all (default {DEFAULT_EPOCHS}; with --resume, the run's own)")
    g.add_argument("--batch-size", type=positive_int, default=32,
                   help="images per batch, each with all its captions")
    g.add_argument("--test-beam", type=positive_int, default=3, help="beam size for the final test scores")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", default="adam", choices=["adam", "sgd"], help="SGD has momentum 0.9")
    g.add_argument("--lr", type=positive_float, default=3e-3, help="peak learning rate")
    g.add_argument("--schedule", default="cosine", choices=["cosine", "step", "constant"],
                   help="learning rate after the warm-up")
    g.add_argument("--warmup-steps", type=nonnegative_int, default=50,
                   help="steps of linear warm-up to the peak learning rate")
    g.add_argument("--decay-every", type=positive_int,
                   help="step schedule: steps between decays (default: an epoch)")
    g.add_argument("--decay-factor", type=positive_float, default=0.5, help="step schedule: lr multiplier")
    g.add_argument("--clip", type=nonnegative_float, default=5.0,
                   help="global gradient norm limit (0: off)")
    g = p.add_argument_group("model")
    g.add_argument("--channels", type=int_list, default=(16, 32, 64),
                   help="conv widths, one 2x pooling block each (default: 16,32,64)")
    g.add_argument("--cell", default="lstm", choices=["lstm", "rnn"],
                   help="the decoder's recurrent cell: an LSTM, or a vanilla tanh RNN (the warm-up "
                        "the LSTM improves on)")
    g.add_argument("--embed-size", type=positive_int, default=64, help="word embedding size E")
    g.add_argument("--hidden-size", type=positive_int, default=128, help="hidden size H of the LSTM (or RNN)")
    g.add_argument("--attention-size", type=positive_int, default=64, help="attention size A")
    g.add_argument("--dropout", type=dropout_rate, default=0.3, help="dropout before the output layer")
    g.add_argument("--embed-dropout", type=dropout_rate, default=0.0,
                   help="dropout on the word vectors, the LSTM's word input")
    g.add_argument("--lambda-alpha", type=nonnegative_float, default=0.02,
                   help="doubly stochastic attention penalty")
    g.add_argument("--weight-decay", type=nonnegative_float, default=0.0, help="L2 penalty on the weights")
    g.add_argument("--bag-of-words", type=nonnegative_float, default=0.0, metavar="WEIGHT",
                   help="weight of an auxiliary loss that trains the encoder to predict, from an "
                        "image's mean feature, the words of its captions (default 0: off)")
    g.add_argument("--label-smoothing", type=dropout_rate, default=0.0, metavar="EPS",
                   help="train on (1 - EPS) x the caption's word + EPS spread evenly over the "
                        "vocabulary, so that the model is never quite sure (default 0: off)")
    g.add_argument("--teacher", metavar="FILE",
                   help="a teacher's next-word distributions for the train captions of this cache "
                        "(python -m rawcap.teacher writes them): learn them beside the captions, "
                        "word-level distillation")
    g.add_argument("--teacher-weight", type=nonnegative_float, default=1.0, metavar="WEIGHT",
                   help="with --teacher: the weight of its term, the mean over tokens of the "
                        "cross-entropy against its distributions (default 1: as much as the "
                        "captions' own)")
    g.add_argument("--no-f-beta", action="store_true", help="drop the sigmoid gate on the context")
    g.add_argument("--batchnorm", action="store_true",
                   help="batch normalisation after each conv (running statistics kept in the checkpoint)")
    g.add_argument("--residual", action="store_true",
                   help="a residual unit in each conv block, x <- ReLU(x + BN(conv3x3(x))): twice "
                        "the conv layers (needs --batchnorm)")
    g.add_argument("--residual-after-pool", action="store_true",
                   help="put each residual unit after its block's maxpool (ResNet's order): at a "
                        "quarter of the pixels, a quarter of the unit's cost (needs --residual)")
    g.add_argument("--residual-units", type=positive_int, default=1, metavar="N",
                   help="N residual units in a row in each conv block, a deeper encoder "
                        "(default 1; more needs --residual)")
    g.add_argument("--no-final-pool", action="store_true",
                   help="the last conv block keeps its map unpooled: the decoder attends over a "
                        "grid twice as fine, 4x the locations (14 x 14 = 196 at 112 px, "
                        "Show-Attend-Tell's grid; 7 x 7 with the pool)")
    g.add_argument("--deep-output", action="store_true",
                   help="Show-Attend-Tell's deep output layer: the logits come from tanh([h, "
                        "context] @ W + b + the previous word's vector), not from h alone")
    g.add_argument("--blind", action="store_true",
                   help="zero the image features: a baseline that shows what the image contributes")
    return p


def parse_args(argv=None):
    """The command line, checked as a whole (check_args) -> argparse.Namespace; a bad one exits
    with status 2 and a usage message, before anything is read or created."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args, parser)
    except ValueError as e:
        parser.error(str(e))
    return args


def check_args(args, parser):
    """The checks that involve several options or the files they name; ValueError says which."""
    given = {k for k, v in vars(args).items() if v != parser.get_default(k)}
    if args.resume:
        if not (Path(args.resume) / "last.h5").is_file():
            raise ValueError(f"--resume {args.resume}: no last.h5 there (nothing to resume; "
                             f"the run stopped before its first save, or it is not a run folder)")
        args.changed = sorted(given - set(RESUME_OPTIONS))    # checked against the run in train()
        return
    if args.scst and not args.init_from:
        raise ValueError("--scst fine-tunes a trained model: give it --init-from RUN/best.h5")
    if not args.scst and given & {"scst_samples", "scst_baseline"}:
        raise ValueError("--scst-samples and --scst-baseline go with --scst")
    if args.scst_baseline == "mean" and args.scst_samples < 2:
        raise ValueError("--scst-baseline mean compares each sample with the image's others: "
                         "give --scst-samples 2 or more")
    if "teacher_weight" in given and not args.teacher:
        raise ValueError("--teacher-weight weighs a teacher's term: give --teacher FILE too")
    if args.teacher and args.scst:
        raise ValueError("--teacher trains on the captions' words; --scst on sampled captions: "
                         "give one of them")
    if args.teacher and not Path(args.teacher).is_file():
        raise ValueError(f"--teacher {args.teacher}: no such file (python -m rawcap.teacher "
                         f"writes one)")
    if args.train_on_val and (args.scst or args.teacher):
        raise ValueError("--train-on-val: --scst's rewards and --teacher's targets cover the train "
                         "split only; train on val without them")
    if (args.zoom != 1 or args.colour_jitter != 0) and not args.augment:
        raise ValueError("--zoom and --colour-jitter are kinds of augmentation: give --augment too")
    if not args.zoom >= 1:                  # NaN too
        raise ValueError(f"--zoom {args.zoom}: a zoom factor is at least 1 (1: no zoom)")
    if not 0 <= args.colour_jitter < 1:
        raise ValueError(f"--colour-jitter {args.colour_jitter}: must lie in [0, 1)")
    if args.residual and not args.batchnorm:
        raise ValueError("--residual needs --batchnorm (a residual unit's conv has no bias: its "
                         "batchnorm shifts it)")
    if args.residual_after_pool and not args.residual:
        raise ValueError("--residual-after-pool places the residual units: give --residual too")
    if args.residual_units > 1 and not args.residual:
        raise ValueError("--residual-units counts the residual units: give --residual too")
    if args.init_from and args.overwrite and args.out and \
            Path(args.init_from).resolve().parent == Path(args.out).resolve():
        raise ValueError("--init-from is inside the --out folder that --overwrite would delete")
    if args.cache:
        clash = sorted(given & set(DATA_OPTIONS) | ({"data"} & given))
        if clash:
            raise ValueError(f"--cache uses the cache's own data and options; drop "
                             f"{', '.join('--' + k.replace('_', '-') for k in clash)}")
    else:
        if args.data != "shapes" and not args.data_dir:
            raise ValueError(f"--data {args.data} needs --data-dir (the folder with the captions "
                             f"and images, or your .tsv captions file)")
        if args.data_dir and not (Path(args.data_dir).is_dir() or
                                  Path(args.data_dir).suffix.lower() == ".tsv" and Path(args.data_dir).is_file()):
            raise ValueError(f"--data-dir {args.data_dir}: no such folder or .tsv file")
        size = args.image_size or default_size(args)
        pools = args_pools(args)
        if size % 2 ** pools:
            raise ValueError(f"--image-size {size} must be a multiple of 2^{pools} = {2 ** pools} "
                             f"(one 2x pooling per entry of --channels {args_channels(args)}"
                             f"{', less the last with --no-final-pool' if args.no_final_pool else ''})")
    if args.layers:
        load_layers(args.layers)            # a StudentLayerError (a ValueError) names the file
    check_free(out_dir(args), overwrite=args.overwrite)
    set_kernels(args.kernels, args.deterministic)


def args_channels(args):
    return ",".join(map(str, args.channels))


def args_pools(args):
    """The encoder's 2x2 maxpools (Config.pools): one per --channels entry, less --no-final-pool."""
    return len(args.channels) - args.no_final_pool


def default_size(args):
    return 64 if args.data == "shapes" else 128


def out_dir(args):
    """--out, else runs/DATA (runs/CACHE_NAME with --cache)."""
    return Path(args.out or Path("runs") / (Path(args.cache).stem if args.cache else args.data))
