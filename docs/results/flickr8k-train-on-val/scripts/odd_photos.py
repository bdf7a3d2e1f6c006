"""The three photos of docs/flickr8k.md's fresh-install check, made odd on purpose from test images:
    python odd_photos.py FLICKR8K_IMAGES OUT_DIR
wide_700x197.jpg (stretched JPEG), alpha_300x300.png (RGBA, alpha fading from 255 to 0 across),
gray_150x400.jpg (grayscale JPEG)."""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

images, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
Image.open(images / "106490881_5a2dd9b7bd.jpg").convert("RGB").resize((700, 197)).save(out / "wide_700x197.jpg")
rgba = Image.open(next(images.glob("1084040636_*.jpg"))).convert("RGB").resize((300, 300)).convert("RGBA")
rgba.putalpha(Image.fromarray(np.tile(np.linspace(255, 0, 300).astype(np.uint8), (300, 1))))
rgba.save(out / "alpha_300x300.png")
Image.open(next(images.glob("1082379191_*.jpg"))).convert("L").resize((150, 400)).save(out / "gray_150x400.jpg")
