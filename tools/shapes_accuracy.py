"""How often does a run caption the built-in dataset exactly right, by number of objects?

    python tools/shapes_accuracy.py runs/shapes/captions_test.json [--data-dir data/shapes]

BLEU rewards the phrasing the five references share; this counts the test images whose
generated caption equals one of their references word for word, split by how many objects
the scene has (the number of shape words in its first reference).
"""
import argparse
import json
from collections import Counter
from pathlib import Path

from rawcap.data.shapes import SHAPES


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("captions", help="a captions_*.json written by train or evaluate")
    parser.add_argument("--data-dir", default="data/shapes", help="the built-in dataset")
    args = parser.parse_args()
    generated = json.loads(Path(args.captions).read_text())
    references = {}
    for line in (Path(args.data_dir) / "Flickr8k.token.txt").read_text().splitlines():
        key, caption = line.split("\t")
        references.setdefault(key.split("#")[0], []).append(caption)
    scenes, exact = Counter(), Counter()
    for name, caption in generated.items():
        objects = sum(word in SHAPES for word in references[name][0].split())
        scenes[objects] += 1
        exact[objects] += caption in references[name]
    for objects in sorted(scenes):
        print(f"{objects} object(s): {exact[objects]:4d} of {scenes[objects]:4d} exactly right "
              f"({100 * exact[objects] / scenes[objects]:.0f}%)")
    print(f"all:         {sum(exact.values()):4d} of {sum(scenes.values()):4d}")


if __name__ == "__main__":
    main()
