"""The shapes dataset: Flickr8k layout, determinism, reuse, atomic writes, grounded captions."""
import json
import re
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from rawcap.data import shapes
from rawcap.data.shapes import (COLOURS, EDGE, GAP, MANIFEST, SHAPES, SIZES, SPLIT_FILES,
                                TEMPLATES, TOKEN_FILE, VOCABULARY, Scene, Thing, captions,
                                generate_shapes, sample_scene)

TOKEN_LINE = re.compile(r"(shapes_\d{5}\.jpg)#([0-4])\t([a-z]+(?: [a-z]+)*)")


def files_of(root):
    """{relative path: bytes} of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_captions(root):
    """{image name: [caption #0, ..., #4]} from the token file, checking each line's form."""
    by_image = {}
    for line in (root / TOKEN_FILE).read_text().splitlines():
        name, k, caption = TOKEN_LINE.fullmatch(line).groups()
        assert int(k) == len(by_image.setdefault(name, [])), line
        by_image[name].append(caption)
    return by_image


def karpathy_tokens(caption):
    caption = caption.lower().replace("-", " ")
    return caption.translate(str.maketrans("", "", "'.,\";?!")).split()


def test_writes_the_flickr8k_layout(tmp_path):
    out = tmp_path / "shapes"
    summary = generate_shapes(out, n_images=45, image_size=64, workers=1, progress=False)
    assert summary["splits"] == {"train": 37, "val": 4, "test": 4}
    assert summary["captions"] == 45 * 5 and not summary["reused"]
    assert Path(summary["path"]) == out.resolve()
    by_image = read_captions(out)
    names = [f"shapes_{i:05d}.jpg" for i in range(45)]
    assert sorted(by_image) == names
    assert all(len(c) == 5 for c in by_image.values())
    splits = {s: (out / f).read_text().splitlines() for s, f in SPLIT_FILES.items()}
    assert {s: len(v) for s, v in splits.items()} == summary["splits"]
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == names
    assert sorted(p.name for p in (out / "images").iterdir()) == names
    with Image.open(out / "images" / names[0]) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 64))
    manifest = json.loads((out / MANIFEST).read_text())
    assert {k: manifest[k] for k in ("n_images", "seed", "image_size")} == {
        "n_images": 45, "seed": 0, "image_size": 64}
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]        # no temporary left behind


def test_same_seed_gives_identical_files_whatever_the_number_of_workers(tmp_path):
    one = generate_shapes(tmp_path / "one", n_images=30, image_size=64, workers=1, progress=False)
    two = generate_shapes(tmp_path / "two", n_images=30, image_size=64, workers=2, progress=False)
    other = generate_shapes(tmp_path / "other", n_images=30, seed=1, image_size=64, workers=2,
                            progress=False)
    one, two, other = (files_of(Path(s["path"])) for s in (one, two, other))
    assert one == two
    assert one[TOKEN_FILE] != other[TOKEN_FILE]
    assert all(one[name] != other[name] for name in one if name.startswith("images/"))


def test_rerun_with_the_same_parameters_reuses_the_dataset(tmp_path, capsys):
    out = tmp_path / "shapes"
    generate_shapes(out, n_images=30, image_size=64, workers=1, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    summary = generate_shapes(out, n_images=30, image_size=64, workers=1, progress=True)
    assert summary["reused"] and summary["splits"] == {"train": 24, "val": 3, "test": 3}
    assert "reusing" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps


def test_different_parameters_regenerate_in_place(tmp_path):
    out = tmp_path / "shapes"
    generate_shapes(out, n_images=30, image_size=64, workers=1, progress=False)
    first = files_of(out)
    summary = generate_shapes(out, n_images=20, seed=1, image_size=64, workers=1, progress=False)
    assert not summary["reused"] and summary["n_images"] == 20 and summary["seed"] == 1
    assert files_of(out)[TOKEN_FILE] != first[TOKEN_FILE]
    assert len(list((out / "images").iterdir())) == 20
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]


def test_an_interrupted_run_leaves_the_old_dataset_and_no_partial_one(tmp_path, monkeypatch):
    out = tmp_path / "shapes"
    generate_shapes(out, n_images=30, image_size=64, workers=1, progress=False)
    before = files_of(out)
    make_image = shapes.make_image

    def fail_at_image_7(images_dir, seed, image_size, index):
        if index == 7:
            raise KeyboardInterrupt
        return make_image(images_dir, seed, image_size, index)

    monkeypatch.setattr(shapes, "make_image", fail_at_image_7)
    with pytest.raises(KeyboardInterrupt):
        generate_shapes(out, n_images=30, seed=5, image_size=64, workers=1, progress=False)
    assert files_of(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]
    with pytest.raises(KeyboardInterrupt):
        generate_shapes(tmp_path / "new", n_images=30, image_size=64, workers=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]


def test_refuses_to_replace_a_directory_that_is_not_a_shapes_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a shapes dataset"):
        generate_shapes(tmp_path, n_images=10, image_size=64, workers=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("name, value", [("n_images", 0), ("seed", -1), ("image_size", 16),
                                         ("workers", 0), ("n_images", 2.5)])
def test_bad_arguments_raise_value_error_naming_them(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        generate_shapes(tmp_path / "shapes", **{name: value}, progress=False)


def test_scenes_stand_in_a_row_or_column_so_one_relation_holds():
    """Along the axis neighbours are apart by GAP; across it their extents overlap."""
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(3000):
        scene = sample_scene(rng)
        things = scene.things
        seen.update((len(things), scene.axis, t.shape, t.colour, t.size) for t in things)
        assert len({t.colour for t in things}) == len(things)
        for t in things:
            half = SIZES[t.size] / 2
            assert EDGE - 1e-9 <= min(t.x, t.y) - half and max(t.x, t.y) + half <= 1 - EDGE + 1e-9
        along, across = ("x", "y") if scene.axis == "x" else ("y", "x")
        for first, second in pairwise(things):
            reach = (SIZES[first.size] + SIZES[second.size]) / 2
            assert getattr(second, along) - getattr(first, along) >= reach + GAP - 1e-9
            assert abs(getattr(second, across) - getattr(first, across)) < reach
    assert {(n, axis) for n, axis, *_ in seen} == set(TEMPLATES)
    assert {s[2:] for s in seen} == {(s, c, z) for s in SHAPES for c in COLOURS for z in SIZES}


def test_captions_use_exactly_the_vocabulary_and_survive_tokenization(tmp_path):
    words = set()
    for n, axis in TEMPLATES:
        for shape in SHAPES:
            for colour in COLOURS:
                for size in SIZES:
                    things = tuple(Thing(shape, colour, size, 0.5, 0.5) for _ in range(n))
                    scene = Scene(things, axis)
                    for caption in captions(scene):
                        assert karpathy_tokens(caption) == caption.split(" ")
                        assert len(caption.split(" ")) <= 20, "the cache truncates at 20 words"
                        words.update(caption.split(" "))
    assert words == set(VOCABULARY)
    generate_shapes(tmp_path, n_images=30, image_size=64, workers=1, progress=False)
    for image_captions in read_captions(tmp_path).values():
        assert len(set(image_captions)) == 5
        assert all(set(c.split()) <= set(VOCABULARY) for c in image_captions)


def caption_objects(caption):
    """(size, colour, shape) of each object a caption #0 names, in order, and the axis it uses."""
    words = caption.split()
    named = [tuple(words[i - 1:i + 2]) for i, word in enumerate(words) if word in COLOURS]
    axis = "x" if "left" in words else "y" if {"above", "top"} & set(words) else None
    return named, axis


def find_blobs(pixels, colour):
    """Connected regions of pixels nearest `colour` among the object colours (JPEG tolerance)."""
    table = np.array(list(COLOURS.values()), dtype=float)
    distance = np.linalg.norm(pixels[:, :, None, :].astype(float) - table, axis=-1)
    mask = (distance.argmin(-1) == list(COLOURS).index(colour)) & (distance.min(-1) < 70)
    labels, count = ndimage.label(mask)
    smallest = 0.3 * (SIZES["small"] * len(pixels)) ** 2 / 2       # a third of a small triangle
    return [np.nonzero(labels == k) for k in range(1, count + 1)
            if (labels == k).sum() >= smallest]


# The share of its bounding box that each shape fills, and where the measured share separates them
# at 128 px (measured: triangle 0.49-0.56, circle 0.73-0.83, square 0.92-1.0).
FILL = {"triangle": 0.5, "circle": np.pi / 4, "square": 1.0}
FILL_BOUNDS = (0.64, 0.87)


def test_captions_are_grounded_in_the_pixels(tmp_path):
    """Every named object is one blob of its colour, of its size and shape, in the caption's order;
    no other object colour is present."""
    size = 128
    generate_shapes(tmp_path, n_images=48, seed=3, image_size=size, workers=2, progress=False)
    for name, image_captions in read_captions(tmp_path).items():
        with Image.open(tmp_path / "images" / name) as image:
            pixels = np.asarray(image)
        named, axis = caption_objects(image_captions[0])
        centres = []
        for colour in COLOURS:
            blobs = find_blobs(pixels, colour)
            wanted = [obj for obj in named if obj[1] == colour]
            assert len(blobs) == len(wanted), (name, colour, image_captions[0])
            if not blobs:
                continue
            (ys, xs), (object_size, _, shape) = blobs[0], wanted[0]
            expected = {z: FILL[shape] * (SIZES[z] * size) ** 2 for z in SIZES}
            assert min(expected, key=lambda z: abs(np.log(len(ys) / expected[z]))) == object_size
            fill = len(ys) / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
            assert np.searchsorted(FILL_BOUNDS, fill) == ["triangle", "circle", "square"].index(
                shape), (name, shape, fill)
            centres.append((named.index(wanted[0]), xs.mean(), ys.mean()))
        centres = np.array([c[1:] for c in sorted(centres)])               # in caption order
        if axis is not None:
            along, across = np.abs(np.diff(centres, axis=0)).T[::1 if axis == "x" else -1]
            assert np.all(np.diff(centres[:, "xy".index(axis)]) > 0), (name, image_captions[0])
            assert np.all(along > 0.15 * size) and np.all(across < along), (name, centres)
