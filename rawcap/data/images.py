"""Image preprocessing with Pillow: any file Pillow opens -> uint8 [3, S, S] RGB.

EXIF orientation is applied; any mode (grayscale, 16-bit, CMYK, palette, with or without
alpha) becomes RGB, transparent pixels composited onto white; then the image becomes S x S in
one of two ways (bicubic resampling either way):

    crop    the shorter side is resized to S and the centre S x S square is cropped (the default:
            the aspect ratio is kept, the ends of the longer side are lost)
    squash  the whole image is resized to S x S (nothing is lost, the aspect ratio is not kept)

A cache records which one `prepare` used, the model's Config keeps it, and `rawcap.caption`
applies the same to a user's photo: training, evaluation and captioning all go through
`load_image`, so a user's photo sees exactly the training preprocessing.
"""
import numpy as np
from PIL import Image, ImageOps


class ImageError(ValueError):
    """An image file that cannot be read; the message starts with its path."""


def to_rgb(image):
    """A Pillow image of any mode -> an RGB image."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):        # 16/32-bit grayscale
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        image = Image.fromarray(np.clip(pixels / top * 255, 0, 255).astype(np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def resize_and_crop(image, size):
    """Resize the shorter side to `size`, then crop the centre size x size square."""
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def squash(image, size):
    """Resize the whole image to size x size, whatever its aspect ratio."""
    return image.resize((size, size), Image.Resampling.BICUBIC)


RESIZE_MODES = {"crop": resize_and_crop, "squash": squash}


def check_resize(resize):
    """ValueError unless `resize` names one of RESIZE_MODES."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {sorted(RESIZE_MODES)}, got {resize!r}")


def load_image(path, size, resize="crop"):
    """The file at `path` -> uint8 array [3, size, size] (RGB, channels first); resize is
    "crop" or "squash" (see the module docstring)."""
    check_resize(resize)
    try:
        with Image.open(path) as image:
            image.load()                        # decode now, so a truncated file fails here
            image = ImageOps.exif_transpose(image)
            image = RESIZE_MODES[resize](to_rgb(image), size)
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()
