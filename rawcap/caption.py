"""Caption your own images with a trained checkpoint.

    python -m rawcap.caption runs/shapes/best.h5 photo.jpg more_photos/ [--beam 3]
        [--attention attention.png] [--json captions.json]

Any file Pillow opens works, of any size and aspect: it goes through exactly the training
preprocessing (rawcap.data.images: EXIF rotation, RGB, then centre crop or squash to S x S as
the checkpoint's Config.resize says) and the checkpoint's own vocabulary. A file that cannot be
read is reported by name on stderr and the others are still captioned (the exit status is then 1).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .backend import get_device, to_numpy
from .checkpoint import CheckpointError, load_checkpoint
from .data.images import ImageError, load_image
from .data.vocab import Vocabulary
from .decode import decode
from .evaluate import find_checkpoint, write_json
from .model import Config


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.caption", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint file, or a run directory (uses best.h5)")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--beam", type=int, default=3, help="beam size; 1 is greedy (default 3)")
    parser.add_argument("--attention", metavar="OUT.png",
                        help="draw each word's attention map (one image: OUT.png; several: OUT-NAME.png)")
    parser.add_argument("--json", metavar="OUT.json", help="also write {image path: caption} as JSON")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args(argv)
    try:
        xp = get_device(args.device)
        params, _, meta = load_checkpoint(find_checkpoint(args.checkpoint))
    except (CheckpointError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = Config.from_dict(meta["config"])
    vocab = Vocabulary(meta["vocab"])
    params = {k: xp.asarray(v) for k, v in params.items()}

    failed, results = 0, {}
    files = list(image_files(args.images))
    for path in files:
        try:
            image = load_image(path, config.image_size, config.resize)
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        pixels = xp.asarray(image[None].astype(np.float32) / 255)
        captions = decode(params, config, pixels, beam_size=args.beam)
        words = vocab.decode(captions.tokens[0])
        results[str(path)] = " ".join(words)
        print(f"{path}: {results[str(path)]}")
        if args.attention:
            out = Path(args.attention)
            if len(files) > 1:
                out = out.with_name(f"{out.stem}-{path.stem}{out.suffix}")
            alphas = to_numpy(captions.alphas[0])
            attention_grid(image, (words + ["<end>"])[:len(alphas)], alphas).save(out)
    if args.json:
        write_json(args.json, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
