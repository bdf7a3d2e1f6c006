"""load_image: every mode -> RGB with the right colours; EXIF orientation; centre crop; errors."""
import re

import numpy as np
import pytest
from PIL import Image

from rawcap.data.images import ImageError, load_image

RED, GREEN, BLUE, WHITE = (220, 30, 30), (30, 200, 40), (30, 40, 220), (255, 255, 255)
PALETTE = [0, 0, 0, 200, 30, 60, 10, 120, 250] + [0] * (768 - 9)   # index 1, index 2


def halves(mode, left, right, size=16):
    """A size x size image of `mode`: colour `left` in the left half, `right` in the right half."""
    image = Image.new(mode, (size, size), left)
    image.paste(right, (size // 2, 0, size, size))
    if mode == "P":
        image.putpalette(PALETTE)
    return image


# mode, left and right pixel values in that mode, file suffix, save options, expected RGB left/right
MODES = [
    ("RGB", (10, 20, 30), (200, 150, 100), "png", {}, (10, 20, 30), (200, 150, 100)),
    ("L", 77, 200, "png", {}, (77, 77, 77), (200, 200, 200)),
    ("LA", (77, 255), (77, 0), "png", {}, (77, 77, 77), WHITE),            # transparent -> white
    ("P", 1, 2, "png", {}, (200, 30, 60), (10, 120, 250)),
    ("P", 1, 2, "png", {"transparency": 2}, (200, 30, 60), WHITE),      # index 2 transparent
    ("RGBA", (10, 20, 30, 255), (10, 20, 30, 0), "png", {}, (10, 20, 30), WHITE),
    ("CMYK", (0, 255, 255, 0), (0, 0, 0, 0), "jpg", {"quality": 95}, (255, 0, 0), WHITE),
    ("I;16", 32768, 65535, "png", {}, (128, 128, 128), WHITE),          # 16-bit, scaled to 8
    ("1", 0, 1, "png", {}, (0, 0, 0), WHITE),
]


@pytest.mark.parametrize("mode, left, right, suffix, options, want_left, want_right", MODES,
                         ids=["RGB", "L", "LA", "P", "P-transparency", "RGBA", "CMYK", "I16", "1"])
def test_every_mode_becomes_rgb_uint8_with_the_right_colours(
        tmp_path, mode, left, right, suffix, options, want_left, want_right):
    path = tmp_path / f"image.{suffix}"
    halves(mode, left, right).save(path, **options)
    assert Image.open(path).mode == mode                  # the file really holds that mode
    out = load_image(path, 16)                            # same size: no resampling
    assert out.shape == (3, 16, 16) and out.dtype == np.uint8
    tolerance = 4 if suffix == "jpg" else 1
    assert np.abs(out[:, :, :8] - np.reshape(want_left, (3, 1, 1))).max() <= tolerance
    assert np.abs(out[:, :, 8:] - np.reshape(want_right, (3, 1, 1))).max() <= tolerance


def close(pixel, colour, tolerance=16):
    return np.abs(pixel.astype(int) - colour).max() <= tolerance


# Stored: left half red, right half blue. Orientation 6 means "rotate 90 degrees clockwise to
# display" (the left side goes to the top); 8 means counter-clockwise (the left side goes down).
@pytest.mark.parametrize("orientation, top_left, top_right, bottom_left, bottom_right", [
    (1, RED, BLUE, RED, BLUE),
    (6, RED, RED, BLUE, BLUE),
    (8, BLUE, BLUE, RED, RED),
])
def test_exif_orientation_is_applied(tmp_path, orientation, top_left, top_right, bottom_left,
                                     bottom_right):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    halves("RGB", RED, BLUE).resize((40, 20)).save(path, quality=95, exif=exif)
    out = load_image(path, 10)
    assert out.shape == (3, 10, 10)
    assert close(out[:, 1, 1], top_left) and close(out[:, 1, 8], top_right)
    assert close(out[:, 8, 1], bottom_left) and close(out[:, 8, 8], bottom_right)


@pytest.mark.parametrize("width, height", [(60, 20), (20, 60)], ids=["wide", "tall"])
def test_non_square_images_are_centre_cropped(tmp_path, width, height):
    """Three bands red | green | blue along the long side: the centre square is all green."""
    image = Image.new("RGB", (width, height), RED)
    middle = (20, 0, 40, 20) if width > height else (0, 20, 20, 40)
    end = (40, 0, 60, 20) if width > height else (0, 40, 20, 60)
    image.paste(GREEN, middle)
    image.paste(BLUE, end)
    image.save(tmp_path / "bands.png")
    out = load_image(tmp_path / "bands.png", 20)          # shorter side is already 20
    assert out.shape == (3, 20, 20)
    assert (out == np.reshape(GREEN, (3, 1, 1))).all()


@pytest.mark.parametrize("width, height", [(60, 20), (20, 60)])
def test_squash_keeps_the_whole_image(tmp_path, width, height):
    """The same red | green | blue bands, squashed: each band is a third of the square."""
    image = Image.new("RGB", (width, height), RED)
    wide = width > height
    image.paste(GREEN, (20, 0, 40, 20) if wide else (0, 20, 20, 40))
    image.paste(BLUE, (40, 0, 60, 20) if wide else (0, 40, 20, 60))
    image.save(tmp_path / "bands.png")
    out = load_image(tmp_path / "bands.png", 30, resize="squash")
    assert out.shape == (3, 30, 30)
    bands = out if wide else out.transpose(0, 2, 1)     # bands along the last axis
    for colour, columns in ((RED, slice(0, 8)), (GREEN, slice(12, 18)), (BLUE, slice(22, 30))):
        assert (bands[:, :, columns] == np.reshape(colour, (3, 1, 1))).all()


def test_crop_and_squash_agree_on_a_square_image(tmp_path):
    """Why the choice does not change a cache of already-square images (the shared Flickr8k copy
    is all 224 x 224): both resize the whole square."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(tmp_path / "sq.png")
    np.testing.assert_array_equal(load_image(tmp_path / "sq.png", 20, "crop"),
                                  load_image(tmp_path / "sq.png", 20, "squash"))


def test_an_unknown_resize_mode_is_refused(tmp_path):
    Image.new("RGB", (8, 8), RED).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match="resize must be one of .'crop', 'squash'., got 'pad'"):
        load_image(tmp_path / "x.png", 8, resize="pad")


def test_shorter_side_is_resized_to_size(tmp_path):
    Image.new("RGB", (40, 32), GREEN).save(tmp_path / "small.png")
    Image.new("RGB", (400, 320), BLUE).save(tmp_path / "big.png")
    assert load_image(tmp_path / "small.png", 16).shape == (3, 16, 16)
    big = load_image(tmp_path / "big.png", 64)
    assert big.shape == (3, 64, 64) and big.flags.c_contiguous
    assert (big == np.reshape(BLUE, (3, 1, 1))).all()


def jpeg_bytes(tmp_path):
    Image.new("RGB", (64, 48), RED).save(tmp_path / "whole.jpg", quality=95)
    return (tmp_path / "whole.jpg").read_bytes()


@pytest.mark.parametrize("kind", ["truncated-jpeg", "corrupt-jpeg", "text-file", "empty-file",
                                  "missing-file"])
def test_unreadable_files_raise_image_error_naming_the_path(tmp_path, kind):
    path = tmp_path / "bad.jpg"
    if kind == "truncated-jpeg":
        path.write_bytes(jpeg_bytes(tmp_path)[:300])
    elif kind == "corrupt-jpeg":
        data = jpeg_bytes(tmp_path)
        path.write_bytes(data[:20] + b"\x00" * 200 + data[220:])
    elif kind == "text-file":
        path.write_text("1000268201_693b08cb0e.jpg#0\tA child in a pink dress .\n")
    elif kind == "empty-file":
        path.write_bytes(b"")
    with pytest.raises(ImageError, match=re.escape(str(path))) as caught:
        load_image(path, 16)
    assert isinstance(caught.value, ValueError)
