"""CaptionBatches: coverage per epoch, tokens and pixels against the cache, order, read-ahead,
errors."""
import threading
import time

import h5py
import numpy as np
import pytest

from rawcap.data import batches
from rawcap.data.batches import CaptionBatches, channel_stats

# Ten images: splits and caption counts. Train image 5 has no caption; per_image skips it.
SPLIT = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
COUNTS = [3, 1, 2, 3, 2, 0, 2, 1, 3, 1]
FIRST_WORD = 4                      # caption k's first word is FIRST_WORD + k


def write_cache(path, split=SPLIT, counts=COUNTS, size=4, max_length=5, seed=0):
    """Write a small cache in the layout of rawcap/data/__init__.py; return its arrays.

    Pixels [:, 0, 0] of image i are i, so a batch's pixels say which rows they came from; the
    first word of caption k is FIRST_WORD + k, so a batch's tokens say which captions it holds.
    Captions have 1 .. max_length words and are stored in shuffled order, not grouped by image.
    """
    rng = np.random.default_rng(seed)
    I = len(split)
    images = rng.integers(0, 256, size=(I, 3, size, size), dtype=np.uint8)
    images[:, :, 0, 0] = np.arange(I)[:, None]
    caption_image = rng.permutation(np.repeat(np.arange(I), counts)).astype(np.int32)
    K, M = len(caption_image), max_length + 2
    captions = np.zeros((K, M), np.int32)
    lengths = rng.integers(1, max_length + 1, size=K) + 2
    for k, length in enumerate(lengths):
        words = rng.integers(FIRST_WORD, FIRST_WORD + K, size=length - 2)
        words[0] = FIRST_WORD + k
        captions[k, :length] = [1, *words, 2]                  # <start> w_1 .. w_n <end>
    arrays = dict(images=images, split=np.array(split, np.uint8), captions=captions,
                  caption_lengths=lengths.astype(np.int32), caption_image=caption_image)
    with h5py.File(path, "w") as f:
        for name, array in arrays.items():
            f[name] = array
        f["filenames"] = np.array([f"{i}.jpg" for i in range(I)], dtype=h5py.string_dtype())
        f["caption_text"] = np.array(["a caption"] * K, dtype=h5py.string_dtype())
        f.attrs["split_names"] = ["train", "val", "test"]
        f.attrs["image_size"] = size
        f.attrs["max_length"] = max_length
    return arrays


@pytest.fixture
def cache(tmp_path):
    path = tmp_path / "cache.h5"
    return path, write_cache(path)


def checked_captions(batch, cache_arrays):
    """The cache rows of the batch's captions, once everything in the batch is checked against
    the cache: tokens, T, mask, pixels, the image each caption is said to describe, and the
    caption rows the batch names."""
    captions, lengths = cache_arrays["captions"], cache_arrays["caption_lengths"]
    k = batch.inputs[:, 1] - FIRST_WORD
    T = lengths[k].max() - 1
    B, B_img = len(k), len(batch.image_rows)
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape == (B, T)
    assert batch.images.shape == (B_img, 3, 4, 4) and batch.caption_image.shape == (B,)
    assert (batch.images.dtype, batch.inputs.dtype, batch.targets.dtype, batch.mask.dtype,
            batch.caption_image.dtype, batch.image_rows.dtype, batch.caption_rows.dtype) == (
        np.float32, np.int32, np.int32, np.bool_, np.int32, np.int64, np.int64)
    assert np.array_equal(batch.caption_rows, k)
    assert np.array_equal(batch.inputs, captions[k, :T])
    assert np.array_equal(batch.targets, captions[k, 1:T + 1])
    # the real targets are w_1 .. w_n <end>: the first length - 1 positions
    assert np.array_equal(batch.mask, np.arange(T) < lengths[k, None] - 1)
    assert np.array_equal(np.rint(batch.images * 255), cache_arrays["images"][batch.image_rows])
    tags = np.rint(batch.images[batch.caption_image, :, 0, 0] * 255)    # [B, 3]: the image row
    assert np.array_equal(tags, np.repeat(cache_arrays["caption_image"][k, None], 3, axis=1))
    return k


@pytest.mark.parametrize("split, codes", [("train", [0]), ("val", [1]), ("test", [2]),
                                          (("train", "val"), [0, 1])])
def test_an_epoch_visits_every_caption_of_the_split_once(cache, split, codes):
    path, arrays = cache
    loader = CaptionBatches(path, split, batch_size=4, prefetch=0)
    epoch = list(loader.epoch(0))
    want = np.flatnonzero(np.isin(arrays["split"][arrays["caption_image"]], codes))
    seen = np.concatenate([checked_captions(batch, arrays) for batch in epoch])
    assert np.array_equal(np.sort(seen), want)
    assert len(epoch) == len(loader) == -(-len(want) // 4)
    assert [len(b.inputs) for b in epoch] == [4] * (len(want) // 4) + [len(want) % 4] * (
        len(want) % 4 > 0)
    for batch in epoch:                             # one image per caption
        assert np.array_equal(batch.caption_image, np.arange(len(batch.inputs)))


def test_per_image_batches_hold_every_captioned_image_once_with_all_its_captions(cache):
    path, arrays = cache
    loader = CaptionBatches(path, "train", batch_size=2, per_image=True, prefetch=0)
    epoch = list(loader.epoch(0))
    rows = np.concatenate([b.image_rows for b in epoch])
    assert np.array_equal(np.sort(rows), [0, 1, 2, 3, 4])                # image 5 has no caption
    assert len(epoch) == len(loader) == 3 and [len(b.image_rows) for b in epoch] == [2, 2, 1]
    for batch in epoch:
        k = checked_captions(batch, arrays)
        for row in batch.image_rows:
            assert sorted(k[batch.image_rows[batch.caption_image] == row]) == list(
                np.flatnonzero(arrays["caption_image"] == row))


def test_the_batch_is_trimmed_to_its_longest_caption(tmp_path):
    path = tmp_path / "cache.h5"
    write_cache(path, split=[0, 0], counts=[1, 1])
    with h5py.File(path, "r+") as f:                          # one word, and three words
        f["caption_lengths"][:] = [3, 5]
        f["captions"][:] = [[1, 4, 2, 0, 0, 0, 0], [1, 5, 6, 7, 2, 0, 0]]
    one, two = (list(CaptionBatches(path, "train", batch_size=n, prefetch=0).epoch(0))
                for n in (1, 2))
    assert sorted(b.inputs.shape[1] for b in one) == [2, 4]
    (both,) = two
    first = np.argsort(both.inputs[:, 1])
    # the short caption's <end> is an input too; its target is <pad>, masked out
    assert np.array_equal(both.inputs[first], [[1, 4, 2, 0], [1, 5, 6, 7]])
    assert np.array_equal(both.targets[first], [[4, 2, 0, 0], [5, 6, 7, 2]])
    assert np.array_equal(both.mask[first], [[1, 1, 0, 0], [1, 1, 1, 1]])


def epoch_captions(loader, index):
    return np.concatenate([b.inputs[:, 1] for b in loader.epoch(index)])


@pytest.mark.parametrize("per_image", [False, True])
def test_the_order_is_fixed_by_seed_and_epoch(cache, per_image):
    path, _ = cache
    loader = CaptionBatches(path, "train", batch_size=3, per_image=per_image, prefetch=0)
    assert np.array_equal(epoch_captions(loader, 3), epoch_captions(loader, 3))
    again = CaptionBatches(path, "train", batch_size=3, per_image=per_image, prefetch=0)
    assert np.array_equal(epoch_captions(loader, 3), epoch_captions(again, 3))
    other_seed = CaptionBatches(path, "train", batch_size=3, per_image=per_image, seed=1,
                                prefetch=0)
    orders = [epoch_captions(loader, i) for i in range(4)] + [epoch_captions(other_seed, 3)]
    assert len({order.tobytes() for order in orders}) == len(orders)


def assert_same_batches(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("per_image", [False, True])
def test_reading_ahead_gives_the_same_batches(cache, per_image):
    path, _ = cache
    sync, ahead = (CaptionBatches(path, "train", batch_size=2, per_image=per_image,
                                  normalize=True, prefetch=n) for n in (0, 2))
    for index in range(2):
        assert_same_batches(list(ahead.epoch(index)), list(sync.epoch(index)))


def test_leaving_an_epoch_early_ends_the_thread_and_closes_the_file(cache):
    path, _ = cache
    before = set(threading.enumerate())
    loader = CaptionBatches(path, "train", batch_size=1, prefetch=2)
    for _ in loader.epoch(0):
        time.sleep(0.05)                        # the reader fills the queue and blocks
        break
    assert [t for t in threading.enumerate() if t not in before] == []
    h5py.File(path, "r+").close()              # fails while another handle has it open
    sync = CaptionBatches(path, "train", batch_size=1, prefetch=0)
    assert_same_batches(list(loader.epoch(1)), list(sync.epoch(1)))


@pytest.mark.parametrize("prefetch", [0, 2])
def test_an_error_while_reading_reaches_the_consumer(cache, monkeypatch, prefetch):
    path, _ = cache
    calls = []

    def failing_read_rows(dataset, rows):
        calls.append(rows)
        if len(calls) == 2:
            raise OSError("disk on fire")
        return dataset[np.sort(rows)]

    monkeypatch.setattr(batches, "read_rows", failing_read_rows)
    before = set(threading.enumerate())
    loader = CaptionBatches(path, "train", batch_size=2, prefetch=prefetch)
    epoch = loader.epoch(0)
    next(epoch)
    with pytest.raises(OSError, match="disk on fire"):
        next(epoch)
    assert [t for t in threading.enumerate() if t not in before] == []


def test_normalize_uses_the_train_split_mean_and_std(tmp_path):
    path = tmp_path / "cache.h5"
    arrays = write_cache(path, counts=[1] * len(SPLIT))     # every image has a caption
    train = CaptionBatches(path, "train", batch_size=4, per_image=True, normalize=True)
    pixels = np.concatenate([b.images for b in train.epoch(0)]).astype(np.float64)
    assert np.allclose(pixels.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    assert np.allclose(pixels.std(axis=(0, 2, 3)), 1, atol=1e-6)
    train_pixels = arrays["images"][arrays["split"] == 0] / 255
    mean, std = channel_stats(path)
    assert np.allclose(mean, train_pixels.mean(axis=(0, 2, 3)), rtol=1e-6)
    assert np.allclose(std, train_pixels.std(axis=(0, 2, 3)), rtol=1e-6)
    val = CaptionBatches(path, "val", batch_size=4, normalize=True)
    assert np.array_equal(val.mean, mean) and np.array_equal(val.std, std)
    (batch,) = val.epoch(0)
    raw = arrays["images"][batch.image_rows] / 255
    assert np.allclose(batch.images, (raw - mean[:, None, None]) / std[:, None, None], atol=1e-6)


def test_bad_arguments_and_files_raise_errors_that_name_them(cache, tmp_path):
    path, _ = cache
    with pytest.raises(ValueError, match="missing.h5: no such file"):
        CaptionBatches(tmp_path / "missing.h5", "train", 4)
    (tmp_path / "notes.txt").write_text("not HDF5")
    with pytest.raises(ValueError, match="notes.txt: not an HDF5 file"):
        CaptionBatches(tmp_path / "notes.txt", "train", 4)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros((1, 3, 4, 4), np.uint8)
    with pytest.raises(ValueError, match=r"other.h5: not a rawcap cache, missing datasets "
                                         r"\['split', 'captions', 'caption_lengths', "):
        CaptionBatches(tmp_path / "other.h5", "train", 4)
    with pytest.raises(ValueError, match="split must be one of .* got 'dev'"):
        CaptionBatches(path, "dev", 4)
    with pytest.raises(ValueError, match=r"split must be one of .* got \('train', 'dev'\)"):
        CaptionBatches(path, ("train", "dev"), 4)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        CaptionBatches(path, "train", 0)
    with pytest.raises(ValueError, match="prefetch must be 0 or more, got -1"):
        CaptionBatches(path, "train", 4, prefetch=-1)
    write_cache(tmp_path / "no_test.h5", split=[0, 1], counts=[1, 1])
    with pytest.raises(ValueError, match="no_test.h5: split 'test' has 0 images and no captions"):
        CaptionBatches(tmp_path / "no_test.h5", "test", 4)


def test_an_epoch_can_start_part_way(cache):
    path, _ = cache
    loader = CaptionBatches(path, "train", 4, seed=3, prefetch=0)
    whole = list(loader.epoch(2))
    rest = list(loader.epoch(2, start=2))
    assert len(rest) == len(whole) - 2
    for a, b in zip(whole[2:], rest):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def windows_of(image, pad):
    """Every S x S window of `image` padded by repeating its border, and their mirror images."""
    S = image.shape[-1]
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    found = [padded[:, y:y + S, x:x + S] for y in range(2 * pad + 1) for x in range(2 * pad + 1)]
    return found + [w[:, :, ::-1] for w in found]


def test_shift_and_flip_cuts_windows_of_the_padded_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8)
    out = batches.shift_and_flip(images, np.random.default_rng(1), max_shift=2)
    assert out.shape == images.shape and out.dtype == images.dtype
    for image, moved in zip(images, out):
        assert any(np.array_equal(moved, w) for w in windows_of(image, 2))
    flipped = [np.array_equal(o, i[:, :, ::-1]) for o, i in
               zip(batches.shift_and_flip(images, np.random.default_rng(2), max_shift=0), images)]
    assert 8 < sum(flipped) < 32                    # about half, with no shift at all


def test_random_zoom_of_one_changes_nothing():
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 9, 9), dtype=np.uint8)
    np.testing.assert_array_equal(batches.random_zoom(images, np.random.default_rng(1), 1.0), images)


def test_random_zoom_matches_scipy_bilinear_sampling_of_its_window():
    from scipy import ndimage
    images = np.random.default_rng(0).integers(0, 256, (6, 3, 10, 10), dtype=np.uint8)
    out = batches.random_zoom(images, np.random.default_rng(1), 1.6)
    draws = np.random.default_rng(1)                 # the same draws, in the same order
    sides = 10 / draws.uniform(1, 1.6, 6)
    corners = draws.uniform(0, 1, (6, 2)) * (10 - sides)[:, None]
    assert sides.min() < 9                           # zoomed, not just resampled
    for n in range(6):
        ys, xs = (corners[n, k] + (np.arange(10) + 0.5) * sides[n] / 10 - 0.5 for k in (0, 1))
        grid = np.meshgrid(ys, xs, indexing="ij")
        for c in range(3):
            want = ndimage.map_coordinates(images[n, c].astype(float), grid, order=1, mode="nearest")
            assert np.abs(out[n, c].astype(float) - want).max() <= 0.5 + 1e-4    # rounded to uint8


def test_jitter_colours_keeps_hues_and_scales_brightness_and_contrast():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0.3, 0.6, (8, 3, 6, 6)).astype(np.float32)    # far from the clip
    np.testing.assert_allclose(batches.jitter_colours(pixels, rng, 0.0), pixels, atol=1e-6)
    out = batches.jitter_colours(pixels, np.random.default_rng(2), 0.3)
    _, c, b = np.random.default_rng(2).uniform(0.7, 1.3, (3, 8, 1, 1, 1))
    luma = np.array([0.299, 0.587, 0.114])[:, None, None]
    grey_in, grey_out = ((x * luma).sum(axis=1, keepdims=True) for x in (pixels, out))
    mean = grey_in.mean(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(grey_out, b * (mean + c * (grey_in - mean)), atol=1e-5)
    greys = np.repeat(pixels[:, :1], 3, axis=1)                       # grey stays grey
    jittered = batches.jitter_colours(greys, np.random.default_rng(3), 0.5)
    np.testing.assert_allclose(jittered, np.repeat(jittered[:, :1], 3, axis=1), atol=1e-6)
    bright = batches.jitter_colours(pixels * 3, np.random.default_rng(4), 0.5)
    assert bright.min() >= 0 and bright.max() == 1                    # clipped


@pytest.mark.parametrize("stronger", [{}, dict(zoom=1.3, colour_jitter=0.3)])
def test_augmented_batches_are_reproducible(cache, stronger):
    path, _ = cache
    plain = CaptionBatches(path, "train", 2, seed=3, per_image=True, prefetch=0)
    ahead = CaptionBatches(path, "train", 2, seed=3, per_image=True, prefetch=2, augment=True,
                           **stronger)
    again = CaptionBatches(path, "train", 2, seed=3, per_image=True, prefetch=0, augment=True,
                           **stronger)
    first, second = list(ahead.epoch(1)), list(again.epoch(1))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.images, b.images)
    resumed = list(again.epoch(1, start=1))          # a resumed run sees the same pixels
    for a, b in zip(first[1:], resumed):
        np.testing.assert_array_equal(a.images, b.images)
    unaugmented = list(plain.epoch(1))
    assert any(not np.array_equal(a.images, u.images) for a, u in zip(first, unaugmented))
    for a, u in zip(first, unaugmented):             # same captions, same order
        np.testing.assert_array_equal(a.inputs, u.inputs)


def small_batch(**changes):
    """A valid two-caption, one-image batch for a vocabulary of 5, with `changes` applied."""
    batch = batches.Batch(images=np.zeros((1, 3, 4, 4), np.float32),
                          inputs=np.array([[1, 2, 3], [1, 4, 0]], np.int32),
                          targets=np.array([[2, 3, 4], [4, 2, 0]], np.int32),
                          mask=np.array([[1, 1, 1], [1, 1, 0]], bool),
                          caption_image=np.zeros(2, np.int32), image_rows=np.zeros(1, np.int64),
                          caption_rows=np.arange(2))
    return batch._replace(**changes)


@pytest.mark.parametrize("changes, message", [
    (dict(inputs=np.array([[1, 2, 5], [1, 4, 0]])), r"batch inputs must lie in \[0, 5\) .* \[0, 5\]"),
    (dict(targets=np.array([[2, -1, 4], [4, 2, 0]])), r"batch targets must lie in \[0, 5\) .* \[-1, 4\]"),
    (dict(mask=np.array([[1, 2, 1], [1, 1, 0]])), "batch mask must hold only 0 and 1"),
    (dict(caption_image=np.array([0, 1])), r"batch caption_image must lie in \[0, 1\)"),
])
def test_check_batch_names_the_bad_array(changes, message):
    batches.check_batch(small_batch(), vocab_size=5)
    with pytest.raises(ValueError, match=message):
        batches.check_batch(small_batch(**changes), vocab_size=5)
