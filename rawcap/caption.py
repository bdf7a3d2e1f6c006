"""Caption your own images, with the shipped model or a trained checkpoint.

    python -m rawcap.caption photo.jpg more_photos/ [--beam K] [--length-penalty ALPHA]
        [--attention attention.png] [--json captions.json]
    python -m rawcap.caption runs/shapes photo.jpg          # a run's best.h5, or any checkpoint
    python -m rawcap.caption runs/a runs/b/last.h5 photo.jpg    # two models as an ensemble

The first argument is the model when it is a .h5 file or a run directory (a folder holding
best.h5 or last.h5); otherwise every argument is an image and the model is the one the package
ships (rawcap.ship; $RAWCAP_MODEL names another file). Several models before the images caption
together, as an ensemble (rawcap.decode: the mean of their log-probabilities; the attention
drawn is the first model's). Which model it is goes to stderr. It decodes with the beam size
and length penalty the shipped model (or the first model) was chosen with on val (a training
checkpoint: beam 3, 0.7), unless --beam or --length-penalty says otherwise.

Any file Pillow opens works, of any size and aspect: it goes through exactly the training
preprocessing (rawcap.data.images: EXIF rotation, RGB, then centre crop or squash to S x S as
the checkpoint's Config.resize says) and the checkpoint's own vocabulary. A file that cannot be
read is reported by name on stderr and the others are still captioned (the exit status is then 1).
"""
import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .backend import get_device, to_numpy
from .checkpoint import CheckpointError
from .cli import HelpFormatter, image_file, nonnegative_float, positive_int, writable_file
from .data.images import ImageError, load_image
from .data.vocab import Vocabulary
from .decode import decode
from .evaluate import write_json
from .ship import describe, load_models, model_decoding


def is_model(path):
    """True for what names a model rather than an image: a .h5 file or a run directory."""
    path = Path(path)
    return path.suffix.lower() in (".h5", ".hdf5") or (path.is_dir() and any(
        (path / name).is_file() for name in ("best.h5", "last.h5")))


def image_files(paths):
    """Files as given, and the files inside folders (sorted; hidden ones skipped)."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            yield path


def attention_grid(image, words, alphas, tile=128, columns=5):
    """image uint8 [3, S, S], words [n], alphas [n, L] -> a Pillow image: the photo, then one
    tile per word with its attention map (upsampled, bilinear) lighting up the photo."""
    photo = Image.fromarray(image.transpose(1, 2, 0)).resize((tile, tile), Image.Resampling.BICUBIC)
    side = int(round(np.sqrt(alphas.shape[1])))
    label = 14
    tiles = [(photo, "")]
    for word, alpha in zip(words, alphas):
        heat = alpha.reshape(side, side) / max(alpha.max(), 1e-12)
        heat = Image.fromarray((255 * heat).astype(np.uint8)).resize((tile, tile), Image.Resampling.BILINEAR)
        lit = Image.composite(photo, Image.new("RGB", photo.size, (0, 0, 0)), heat)
        tiles.append((Image.blend(photo, lit, 0.8), word))
    rows = -(-len(tiles) // columns)
    grid = Image.new("RGB", (columns * tile, rows * (tile + label)), "white")
    draw = ImageDraw.Draw(grid)
    for k, (picture, word) in enumerate(tiles):
        x, y = (k % columns) * tile, (k // columns) * (tile + label)
        grid.paste(picture, (x, y))
        draw.text((x + 3, y + tile + 1), word, fill="black")
    return grid


def attention_paths(out, files):
    """Where each file's attention grid goes: OUT itself for one file, else OUT-STEM.png, with
    the extension (OUT-x_jpg.png) where two files share a stem, and a number where even that
    is shared (same name in two folders), so no grid overwrites another."""
    out = Path(out)
    if len(files) == 1:
        return [out]
    stems = Counter(f.stem for f in files)
    names = [f.stem if stems[f.stem] == 1 else f"{f.stem}_{f.suffix[1:]}" for f in files]
    counts, seen = Counter(names), Counter()
    paths = []
    for name in names:
        seen[name] += 1
        if counts[name] > 1:
            name = f"{name}-{seen[name]}"
        paths.append(out.with_name(f"{out.stem}-{name}{out.suffix}"))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.caption", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter,
                                     usage="%(prog)s [options] [CHECKPOINT ...] IMAGE [IMAGE ...]")
    parser.add_argument("images", nargs="+", metavar="[CHECKPOINT ...] IMAGE",
                        help="image files or folders of images, after optional checkpoints: "
                             ".h5 files or run directories, several for an ensemble (default: "
                             "the shipped model, or $RAWCAP_MODEL)")
    parser.add_argument("--beam", type=positive_int,
                        help="beam size; 1 is greedy (default: the one the shipped model was "
                             "chosen with, else 3)")
    parser.add_argument("--length-penalty", metavar="ALPHA", type=nonnegative_float,
                        help="alpha: beam search ranks finished captions by log p / tokens^alpha "
                             "(0: plain log-probability, which favours short captions; 1: per "
                             "token; default: the shipped model's, else 0.7)")
    parser.add_argument("--attention", metavar="OUT.png", type=image_file,
                        help="draw each word's attention map (one image: OUT.png; several: OUT-NAME.png)")
    parser.add_argument("--json", metavar="OUT.json", type=writable_file,
                        help="also write {image path: caption} as JSON")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args(argv)
    model_paths = []
    while args.images and is_model(args.images[0]):
        model_paths.append(args.images.pop(0))
    if not args.images:
        parser.error(f"{model_paths[-1]} is a model; give the images to caption after it")
    files = list(image_files(args.images))
    empty = [p for p in args.images if Path(p).is_dir() and not any(f.parent == Path(p) for f in files)]
    if empty:
        parser.error(f"no image files in {', '.join(empty)}")
    try:
        xp = get_device(args.device)
        checkpoints, loaded = zip(*load_models(model_paths))
    except (CheckpointError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for checkpoint, (_, _, meta) in zip(checkpoints, loaded):
        print(f"model: {describe(checkpoint, meta)}", file=sys.stderr)
    _, config, meta = loaded[0]
    beam, penalty = model_decoding(meta)
    beam = args.beam or beam
    penalty = penalty if args.length_penalty is None else args.length_penalty
    vocab = Vocabulary(meta["vocab"])
    # as decode takes them: an ensemble (of one model, it decodes as that model)
    params = tuple({k: xp.asarray(v) for k, v in p.items()} for p, _, _ in loaded)
    configs = tuple(c for _, c, _ in loaded)

    failed, results = 0, {}
    grids = attention_paths(args.attention, files) if args.attention else [None] * len(files)
    for path, grid in zip(files, grids):
        try:
            image = load_image(path, config.image_size, config.resize)
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        pixels = xp.asarray(image[None].astype(np.float32) / 255)
        captions = decode(params, configs, pixels, beam_size=beam, length_normalization=penalty)
        words = vocab.decode(captions.tokens[0])
        results[str(path)] = " ".join(words)
        print(f"{path}: {results[str(path)]}")
        if grid:
            alphas = to_numpy(captions.alphas[0])
            attention_grid(image, (words + ["<end>"])[:len(alphas)], alphas).save(grid)
    if args.json:
        write_json(args.json, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
