"""A tiny Flickr8k-style dataset, written in any of the three layouts, with faults on request.

12 images (40 wide, 32 high), each one solid colour and named after it in every caption, so a
test can check that a caption and its image belong together. 5 captions each; split 8/2/2.
Most images are JPEG, every fourth one PNG.

    root = write_dataset(tmp_path, "kaggle", missing=["img03.jpg"])
"""
import csv
import json

from PIL import Image

from rawcap.data.tokenize import tokenize

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220),
           "yellow": (240, 230, 40), "cyan": (40, 220, 230), "magenta": (220, 40, 220),
           "white": (250, 250, 250), "black": (5, 5, 5), "orange": (250, 140, 20),
           "purple": (120, 30, 160), "grey": (128, 128, 128), "brown": (120, 70, 20)}
NAMES = [f"img{i:02d}.png" if i % 4 == 3 else f"img{i:02d}.jpg" for i in range(12)]
COLOUR_OF = dict(zip(NAMES, COLOURS))                      # file name -> colour word
SPLIT_OF = {name: "train" if i < 8 else "val" if i < 10 else "test" for i, name in enumerate(NAMES)}
WIDTH, HEIGHT = 40, 32
BOGUS_ID = "2258277193_586949ec62.jpg.1"                   # Flickr8k's real id with no image

# Karpathy's tokenization has work to do on every one: case, '-', ' . , " ; ? !
TEMPLATES = ["A {c} square.",
             "A plain {c} square on a well-lit background!",
             "The picture is {c}, isn't it?",
             'One "{c}" tile; nothing else.',
             "{C} everywhere"]


def captions(name):
    """The 5 raw caption strings of image `name`."""
    colour = COLOUR_OF[name]
    return [t.format(c=colour, C=colour.capitalize()) for t in TEMPLATES]


def expected_tokens():
    """file name -> its tokenized captions, what every reader should return."""
    return {name: [tokenize(c) for c in captions(name)] for name in NAMES}


def write_dataset(root, layout="flickr8k", image_dir="Images", split_files=True, *,
                  missing=(), truncated=(), empty_caption=None, extra_lines=(),
                  extra_split=None, bogus_id=False):
    """Write the dataset under `root` in `layout` (flickr8k, kaggle or karpathy) -> root.

    split_files   kaggle only: also write the three Flickr_8k.*Images.txt files
    missing       image names whose file is not written
    truncated     image names whose file is cut to half its bytes
    empty_caption an image name whose third caption becomes " ." (no tokens)
    extra_lines   raw lines appended to the caption file (flickr8k, kaggle)
    extra_split   {split: [names]} appended to the split files (karpathy: entries with no captions)
    bogus_id      add 5 captions of BOGUS_ID, an id in no split (flickr8k, kaggle)
    """
    folder = root / image_dir
    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        if name in missing:
            continue
        path = folder / name
        Image.new("RGB", (WIDTH, HEIGHT), COLOURS[COLOUR_OF[name]]).save(path, quality=95)
        if name in truncated:
            data = path.read_bytes()
            path.write_bytes(data[:len(data) // 2])

    caps = {name: captions(name) for name in NAMES}
    if empty_caption:
        caps[empty_caption][2] = " ."
    if bogus_id:
        caps[BOGUS_ID] = ["people waiting for the subway"] * 5
    extra_split = extra_split or {}

    if layout == "flickr8k":
        lines = [f"{name}#{j}\t{c}" for name, cs in caps.items() for j, c in enumerate(cs)]
        (root / "Flickr8k.token.txt").write_text("\n".join([*lines, *extra_lines]) + "\n")
    elif layout == "kaggle":
        with open(root / "captions.txt", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")        # quotes the captions with commas
            writer.writerow(["image", "caption"])
            writer.writerows([name, c] for name, cs in caps.items() for c in cs)
            f.writelines(line + "\n" for line in extra_lines)
    elif layout == "karpathy":
        images = [{"filename": name, "split": SPLIT_OF[name],
                   "sentences": [{"raw": c, "tokens": tokenize(c)} for c in caps[name]]}
                  for name in NAMES]
        images += [{"filename": name, "split": split, "sentences": []}
                   for split, names in extra_split.items() for name in names]
        (root / "dataset_flickr8k.json").write_text(json.dumps({"images": images}))
    else:
        raise ValueError(f"unknown layout {layout!r}")

    if layout == "flickr8k" or (layout == "kaggle" and split_files):
        for split, file_name in [("train", "Flickr_8k.trainImages.txt"),
                                 ("val", "Flickr_8k.devImages.txt"),
                                 ("test", "Flickr_8k.testImages.txt")]:
            names = [n for n in NAMES if SPLIT_OF[n] == split] + extra_split.get(split, [])
            (root / file_name).write_text("".join(n + "\n" for n in names))
    return root
