"""The built-in dataset: coloured shapes on textured grey backgrounds, in the Flickr8k layout.

    generate_shapes("data/shapes")      # python -m rawcap.data shapes --out data/shapes

Each image holds 1 to 3 objects. An object is a shape (circle, square, triangle), a colour (five
saturated ones, all different within an image) and a size (small or large: a bounding box of 16%
or 30% of the image side). Two or three objects stand in a row or in a column: along that axis
they are separated by a gap, across it they stray from a common line by less than half a small
object, so exactly one relation holds (left/right for a row, above/below for a column). The
backgrounds are low-saturation grey gradients, two thirds of them with faint stripes or checks,
and pixel noise covers everything, so no background pixel looks like an object's colour.

Every image gets five captions, one per template (caption #k uses template k). They name every
object by size, colour and shape, in their order along the row or column, and say the relation.
So everything a caption says can be read off the pixels, and nothing can be guessed without them.
Captions are lower-case words from VOCABULARY separated by single spaces, with no punctuation:
Karpathy's tokenization leaves them unchanged.

The files written into out_dir, as in Flickr8k (n images, 80/10/10 split):

    images/shapes_00000.jpg ...      RGB JPEG, image_size x image_size, quality 90, 4:4:4 chroma
    Flickr8k.token.txt               shapes_00000.jpg#0<TAB>caption, five lines per image
    Flickr_8k.trainImages.txt        the first n - 2 * (n // 10) images, one name per line
    Flickr_8k.devImages.txt          the next n // 10 images (the val split)
    Flickr_8k.testImages.txt         the last n // 10 images
    shapes.json                      the manifest: the parameters and the counts

Image i is drawn from its own generator, np.random.default_rng((seed, i)), so the same arguments
give byte-identical files whatever the number of worker processes.
"""
import json
import os
import shutil
import sys
from contextlib import nullcontext
from functools import partial
from multiprocessing import Pool
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm import tqdm

FORMAT_VERSION = 1
MANIFEST = "shapes.json"
TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
JPEG_QUALITY = 90

COLOURS = {"red": (215, 35, 35), "green": (40, 170, 60), "blue": (40, 80, 225),
           "yellow": (235, 205, 40), "purple": (150, 40, 175)}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 0.16, "large": 0.30}   # side of the object's bounding box / image side
EDGE = 0.015                             # least margin between an object and the image border
GAP = 0.03                               # least gap between neighbours along their row or column
JITTER = 0.06                            # how far an object strays from its row's (column's) line
GREYS = (70.0, 190.0)                    # range of the background's grey levels
TINT = 12.0                              # largest colour cast of a background, per channel
NOISE = (3.0, 10.0)                      # range of the pixel noise's standard deviation

# Caption templates by (number of objects, axis of the row or column). a, b, c are the objects in
# order from left to right (axis "x") or from top to bottom (axis "y"); "{a}" reads
# "size colour shape".
TEMPLATES = {
    (1, None): ("a {a}",
                "there is a {a}",
                "a {a.colour} {a.shape} that is {a.size}",
                "a {a.size} {a.shape} that is {a.colour}",
                "the image shows a {a}"),
    (2, "x"): ("a {a} to the left of a {b}",
               "a {b} to the right of a {a}",
               "a {a} on the left and a {b} on the right",
               "a {b} with a {a} to its left",
               "there is a {a} and a {b} to its right"),
    (2, "y"): ("a {a} above a {b}",
               "a {b} below a {a}",
               "a {a} at the top and a {b} at the bottom",
               "a {b} with a {a} above it",
               "there is a {a} and a {b} below it"),
    (3, "x"): ("a {a} then a {b} then a {c} from left to right",
               "from right to left a {c} then a {b} then a {a}",
               "a {a} on the left then a {b} then a {c}",
               "a {b} between a {a} on the left and a {c} on the right",
               "a {a} left of a {b} which is left of a {c}"),
    (3, "y"): ("a {a} then a {b} then a {c} from top to bottom",
               "from bottom to top a {c} then a {b} then a {a}",
               "a {a} at the top then a {b} then a {c}",
               "a {b} between a {a} at the top and a {c} at the bottom",
               "a {a} above a {b} which is above a {c}"),
}
CAPTIONS_PER_IMAGE = 5

VOCABULARY = ("a", "above", "and", "at", "below", "between", "blue", "bottom", "circle", "from",
              "green", "image", "is", "it", "its", "large", "left", "of", "on",
              "purple", "red", "right", "shows", "small", "square", "that", "the", "then",
              "there", "to", "top", "triangle", "which", "with", "yellow")


class Thing(NamedTuple):
    """One object of a scene; x, y is its centre as a fraction of the side (y grows downwards)."""
    shape: str
    colour: str
    size: str
    x: float
    y: float

    def __str__(self):
        return f"{self.size} {self.colour} {self.shape}"


class Scene(NamedTuple):
    """The objects in order along `axis` ("x" left to right, "y" top to bottom; None for one)."""
    things: tuple
    axis: str | None


def sample_scene(rng):
    """A random scene: 1 to 3 objects of distinct colours, in a row or a column when several."""
    n = int(rng.integers(1, 4))
    colours = rng.permutation(list(COLOURS))[:n]
    shapes = rng.choice(SHAPES, size=n)
    sizes = rng.choice(list(SIZES), size=n)
    extents = np.array([SIZES[size] for size in sizes])
    lowest, highest = EDGE + extents / 2, 1 - EDGE - extents / 2    # where each centre may go
    if n == 1:
        axis, along, across = None, rng.uniform(lowest, highest), rng.uniform(lowest, highest)
    else:
        axis = str(rng.choice(["x", "y"]))
        slack = 1 - 2 * EDGE - extents.sum() - GAP * (n - 1)       # free room along the axis
        spaces = rng.dirichlet(np.ones(n + 1)) * slack               # shared out at random
        along, edge = [], EDGE
        for extent, space in zip(extents, spaces):
            edge += space
            along.append(edge + extent / 2)
            edge += extent + GAP
        line = rng.uniform(lowest.max(), highest.min())              # the row's (column's) line
        across = np.clip(line + rng.uniform(-JITTER, JITTER, size=n), lowest, highest)
    xs, ys = (across, along) if axis == "y" else (along, across)
    things = tuple(Thing(str(shape), str(colour), str(size), float(x), float(y))
                   for shape, colour, size, x, y in zip(shapes, colours, sizes, xs, ys))
    return Scene(things, axis)


def captions(scene):
    """The five reference captions of a scene, caption k from template k."""
    objects = dict(zip("abc", scene.things))
    return [template.format(**objects) for template in TEMPLATES[len(scene.things), scene.axis]]


def signed_distance(thing, x, y, image_size):
    """Distance in pixels from pixel centres (x, y) to the object's outline, negative inside.

    Circle: |p - centre| - r. Square: the larger of |dx|, |dy|, less half the side. Triangle
    (apex up, base and height equal to the side): the largest distance to its three edges' lines.
    """
    cx, cy = thing.x * image_size, thing.y * image_size
    half = SIZES[thing.size] * image_size / 2
    dx, dy = x - cx, y - cy
    if thing.shape == "circle":
        return np.hypot(dx, dy) - half
    if thing.shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - half
    slant = (2 * np.abs(dx) - (dy + half)) / np.sqrt(5)             # the two sloping edges
    return np.maximum(dy - half, slant)


def background(rng, x, y, image_size):
    """[3, S, S] float: a grey gradient in a random direction with a faint colour cast, and for
    two thirds of the images faint stripes or checks (a grey texture, never an object colour)."""
    start, end = rng.uniform(*GREYS, size=2)
    angle, stripe_angle = rng.uniform(0, 2 * np.pi, size=2)
    along = x * np.cos(angle) + y * np.sin(angle)
    grey = start + (end - start) * (along - along.min()) / np.ptp(along)
    texture = rng.choice(["plain", "stripes", "checks"])
    period = rng.uniform(0.05, 0.12) * image_size
    contrast = rng.uniform(8, 20)
    if texture == "stripes":
        grey = grey + contrast * np.sin(2 * np.pi * (x * np.cos(stripe_angle)
                                                     + y * np.sin(stripe_angle)) / period)
    if texture == "checks":
        grey = grey + contrast * (2 * ((np.floor(x / period) + np.floor(y / period)) % 2) - 1)
    return grey + rng.uniform(-TINT, TINT, size=(3, 1, 1))


def bounding_box(thing, image_size):
    """(rows, columns) slices around the object, with two pixels to spare: all it can paint."""
    reach = SIZES[thing.size] * image_size / 2 + 2
    return tuple(slice(max(0, int(centre * image_size - reach)),
                       min(image_size, int(np.ceil(centre * image_size + reach))))
                 for centre in (thing.y, thing.x))


def render(scene, rng, image_size):
    """The scene's pixels, uint8 [S, S, 3] RGB: background, objects, then noise over everything.

    Each object is painted with coverage alpha = clip(0.5 - distance, 0, 1): solid inside, a
    one-pixel anti-aliased edge. Only its bounding box is computed; the image is kept channels
    first while drawing so that NumPy's inner loops run along whole rows.
    """
    centres = np.arange(image_size) + 0.5
    x, y = centres[None, :], centres[:, None]
    image = background(rng, x, y, image_size)
    for thing in scene.things:
        rows, columns = bounding_box(thing, image_size)
        alpha = np.clip(0.5 - signed_distance(thing, x[:, columns], y[rows], image_size), 0, 1)
        patch = image[:, rows, columns]                                # a view into image
        patch += (np.array(COLOURS[thing.colour])[:, None, None] - patch) * alpha
    image += rng.normal(0, rng.uniform(*NOISE), size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def image_name(index):
    """The file name of image `index`: shapes_00042.jpg."""
    return f"shapes_{index:05d}.jpg"


def make_image(images_dir, seed, image_size, index):
    """Draw image `index` from its own generator, save it as JPEG; return its five captions."""
    rng = np.random.default_rng((seed, index))
    scene = sample_scene(rng)
    pixels = render(scene, rng, image_size)
    Image.fromarray(pixels).save(Path(images_dir) / image_name(index), quality=JPEG_QUALITY,
                                 subsampling=0)
    return captions(scene)


def split_sizes(n_images):
    """(train, val, test) image counts: val and test get n // 10 each, train the rest."""
    held_out = n_images // 10
    return n_images - 2 * held_out, held_out, held_out


def generate_shapes(out_dir, n_images=6000, seed=0, image_size=128, workers=None, progress=True):
    """Write the shapes dataset into out_dir (see the module docstring) and return its summary.

    The summary is the manifest (format_version, n_images, seed, image_size, splits: the image
    count per split, captions) plus path and reused. If out_dir already holds a complete dataset
    made with the same parameters it is reused, not rewritten. Otherwise the dataset is built in a
    temporary sibling directory that replaces out_dir only once complete, so an interrupted run
    leaves either the old out_dir or none. An existing out_dir that is not a shapes dataset (no
    shapes.json) and not empty is never replaced: FileExistsError.

    workers: processes drawing images (default os.cpu_count(); 1 draws in this process).
    progress: show a progress bar, and say so on stderr when an existing dataset is reused.
    """
    _check_arguments(n_images, seed, image_size, workers)
    out_dir = Path(out_dir).resolve()
    params = {"format_version": FORMAT_VERSION, "n_images": int(n_images), "seed": int(seed),
              "image_size": int(image_size)}
    manifest = _read_manifest(out_dir)
    if manifest is not None and _is_complete(out_dir, manifest, params):
        if progress:
            print(f"{out_dir}: reusing the shapes dataset there ({MANIFEST} matches)",
                  file=sys.stderr)
        return {**manifest, "path": str(out_dir), "reused": True}
    if manifest is None and out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not a shapes dataset (no {MANIFEST});"
                              " refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial_dir = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(partial_dir, ignore_errors=True)
    partial_dir.mkdir()
    try:
        manifest = _write_dataset(partial_dir, params, workers or os.cpu_count() or 1, progress)
        _move_into_place(partial_dir, out_dir)
    finally:
        shutil.rmtree(partial_dir, ignore_errors=True)
    return {**manifest, "path": str(out_dir), "reused": False}


def _check_arguments(n_images, seed, image_size, workers):
    workers = 1 if workers is None else workers                        # None: the default
    for name, value, least in (("n_images", n_images, 1), ("seed", seed, 0),
                               ("image_size", image_size, 32), ("workers", workers, 1)):
        if not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"generate_shapes: {name} must be an integer >= {least},"
                             f" got {value!r}")


def _write_dataset(root, params, workers, progress):
    """Draw every image into root/images, then write the caption, split and manifest files."""
    n = params["n_images"]
    (root / "images").mkdir()
    make = partial(make_image, root / "images", params["seed"], params["image_size"])
    with (Pool(workers) if workers > 1 else nullcontext()) as pool:
        drawn = (pool.imap(make, range(n), chunksize=max(1, min(100, n // (8 * workers))))
                 if pool else map(make, range(n)))
        all_captions = list(tqdm(drawn, total=n, desc="shapes", unit="image",
                                 disable=not progress))
    names = [image_name(i) for i in range(n)]
    lines = [f"{name}#{k}\t{caption}"
             for name, image_captions in zip(names, all_captions)
             for k, caption in enumerate(image_captions)]
    (root / TOKEN_FILE).write_text("\n".join(lines) + "\n")
    n_train, n_val, n_test = split_sizes(n)
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val),
              "test": (n_train + n_val, n)}
    for split, (first, stop) in bounds.items():
        (root / SPLIT_FILES[split]).write_text("".join(f"{name}\n" for name in names[first:stop]))
    manifest = {**params, "splits": {"train": n_train, "val": n_val, "test": n_test},
                "captions": len(lines)}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _read_manifest(out_dir):
    try:
        return json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _is_complete(out_dir, manifest, params):
    """The manifest records these parameters and every file it promises is there."""
    return (all(manifest.get(key) == value for key, value in params.items())
            and all((out_dir / name).is_file() for name in (TOKEN_FILE, *SPLIT_FILES.values()))
            and sum(1 for _ in (out_dir / "images").glob("shapes_*.jpg")) == params["n_images"])


def _move_into_place(new_dir, out_dir):
    """Rename new_dir to out_dir; an old out_dir is moved aside first and deleted after."""
    if out_dir.exists():
        old_dir = new_dir.with_name(new_dir.name.replace(".partial-", ".old-"))
        out_dir.rename(old_dir)
        new_dir.rename(out_dir)
        shutil.rmtree(old_dir)
    else:
        new_dir.rename(out_dir)
