"""Shuffled batches from the HDF5 cache, read ahead by a background thread.

    loader = CaptionBatches("data/flickr8k.h5", "train", batch_size=32)
    for epoch in range(epochs):
        for batch in loader.epoch(epoch):
            ...  # batch.images[B_img, 3, S, S], batch.inputs / targets / mask [B, T]

Shape key: B captions and B_img images in a batch, T time steps, S image size.

A batch is filled in one of two ways:
- by caption (the default): an epoch visits every (image, caption) pair of the split once.
  A batch is `batch_size` captions, each with its own copy of its image: B_img = B and
  caption_image = arange(B). The last batch of an epoch may be smaller.
- by image (per_image=True): an epoch visits every image of the split once. A batch is
  `batch_size` images with all of their captions, so the encoder runs once per image;
  caption_image says which image each caption describes. Images with no caption are left out.

The order is a permutation drawn from np.random.default_rng((seed, epoch)): each epoch has its
own, and the same (seed, epoch) gives the same batches whatever `prefetch` is.

Augmentation (augment=True, for training): each image of a batch is shifted by up to S // 16
pixels in each direction (the image is padded by repeating its border, then an S x S window is
cut at a random offset) and mirrored left-right with probability 1/2. The draws come from
np.random.default_rng((seed, epoch, batch number)), so they too are the same whatever
`prefetch` is, and a resumed run sees the same pixels. Two stronger kinds can be added:
zoom > 1 first cuts each image to a random square of side S / z, z uniform in [1, zoom], and
resizes it back to S x S (`random_zoom`); colour_jitter = a > 0 then scales each image's
saturation, contrast and brightness by factors uniform in [1 - a, 1 + a] (`jitter_colours`).

The caption arrays of the split are small and are read into memory once; images are read from
the file batch by batch: each distinct row on its own, then put in the order the batch wants
(`read_rows`).
"""
import math
import os
import queue
import threading
from contextlib import closing
from typing import NamedTuple

import numpy as np

from .cache import open_cache
from .flickr8k import SPLITS
from .vocab import PAD_ID



class Batch(NamedTuple):
    """One batch for teacher forcing: the model reads inputs[:, t] and predicts targets[:, t].

    images         float32 [B_img, 3, S, S]  pixels / 255 in [0, 1], or normalised per channel
    inputs         int32   [B, T]   caption tokens 0 .. T-1:  <start> w_1 .. w_n (<end>, <pad> ...)
    targets        int32   [B, T]   caption tokens 1 .. T:    w_1 .. w_n <end> (<pad> ...)
    mask           bool    [B, T]   targets != <pad>: the n + 1 real targets, <end> included
    caption_image  int32   [B]      the row of `images` that caption b describes
    image_rows     int64   [B_img]  the rows of the cache's images (file names, references)
    caption_rows   int64   [B]      the rows of the cache's captions (a teacher's soft targets)

    T is the longest caption of the batch, counting <start> and <end>, minus one.
    """
    images: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    caption_image: np.ndarray
    image_rows: np.ndarray
    caption_rows: np.ndarray


def check_batch(batch, vocab_size):
    """Raise a ValueError unless the batch's ids and mask hold values the model can take:
    inputs and targets in [0, vocab_size), mask of 0 and 1, caption_image rows of images.

    Run on the host batch before it is copied to a GPU: the kernels do not check values, since
    reading a device array's values would synchronise the host with the GPU every step.
    """
    for name in ("inputs", "targets"):
        ids = getattr(batch, name)
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"batch {name} must lie in [0, {vocab_size}) (the model's vocabulary), "
                             f"got values in [{ids.min()}, {ids.max()}]")
    if not np.isin(batch.mask, (0, 1)).all():
        raise ValueError("batch mask must hold only 0 and 1 (or False and True)")
    rows = batch.caption_image
    if rows.size and (rows.min() < 0 or rows.max() >= len(batch.images)):
        raise ValueError(f"batch caption_image must lie in [0, {len(batch.images)}) (its images), "
                         f"got values in [{rows.min()}, {rows.max()}]")


class CaptionBatches:
    """The batches of one split of a cache (or of several together), epoch after epoch.

    cache_path   the HDF5 cache (layout in rawcap/data/__init__.py)
    split        "train", "val" or "test", or a tuple of them, e.g. ("train", "val")
    batch_size   captions per batch; images per batch when per_image
    seed         with the epoch index, fixes the order of the batches
    per_image    fill batches by image rather than by caption (module docstring)
    normalize    subtract the train split's per-channel mean and divide by its std
                 (`channel_stats`, computed here once; kept as .mean and .std, float32 [3])
    prefetch     batches read ahead by a background thread; 0 reads them in the caller's thread
    augment      random shifts and left-right flips of the images (module docstring)
    zoom         with augment: the largest zoom factor z of `random_zoom` (1: none)
    colour_jitter  with augment: the spread a of `jitter_colours` (0: none)
    """

    def __init__(self, cache_path, split, batch_size, seed=0, per_image=False,
                 normalize=False, prefetch=2, augment=False, zoom=1.0, colour_jitter=0.0):
        names = (split,) if isinstance(split, str) else tuple(split)
        if not names or any(name not in SPLITS for name in names):
            raise ValueError(f"split must be one of {SPLITS} or a tuple of them, got {split!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if prefetch < 0:
            raise ValueError(f"prefetch must be 0 or more, got {prefetch}")
        if not (zoom >= 1 and 0 <= colour_jitter < 1):
            raise ValueError(f"zoom must be at least 1 and colour_jitter in [0, 1), got "
                             f"{zoom} and {colour_jitter}")
        self.path, self.split, self.batch_size = os.fspath(cache_path), split, batch_size
        self.seed, self.per_image, self.prefetch = seed, per_image, prefetch
        self.augment, self.zoom, self.colour_jitter = augment, zoom, colour_jitter

        with open_cache(self.path) as file:
            in_split = np.isin(file["split"][()], [SPLITS.index(name) for name in names])
            caption_image = file["caption_image"][()]
            keep = in_split[caption_image]
            self._captions = file["captions"][()][keep]            # [K, M]
            self._lengths = file["caption_lengths"][()][keep]      # [K]
        if not keep.any():
            raise ValueError(f"{self.path}: split {split!r} has {in_split.sum()} images "
                             f"and no captions")
        self._caption_image = caption_image[keep].astype(np.int64)  # [K] rows of the cache
        self._caption_rows = np.flatnonzero(keep)                   # [K] the captions' own rows

        # Per-image grouping: the captioned images of the split, and the captions of each.
        by_image = np.argsort(self._caption_image, kind="stable")
        self._image_rows, starts = np.unique(self._caption_image[by_image], return_index=True)
        self._captions_of = np.split(by_image, starts[1:])

        self.mean, self.std = channel_stats(self.path) if normalize else (None, None)

    @property
    def num_captions(self):
        """The captions of the split: one epoch's (image, caption) pairs."""
        return len(self._captions)

    @property
    def num_images(self):
        """The images of the split that have a caption."""
        return len(self._image_rows)

    def __len__(self):
        """Batches per epoch."""
        units = self.num_images if self.per_image else self.num_captions
        return math.ceil(units / self.batch_size)

    def epoch(self, index, start=0):
        """An iterator over the batches of epoch `index` (an int >= 0), in an order fixed by
        (seed, index), from batch number `start` on (a resumed run skips those it has done).

        With prefetch > 0 a daemon thread reads ahead. Leaving the loop early (break, an
        exception) stops the thread and closes its file once the iterator is dropped or closed.
        """
        batches = self._read(index, self._plan(index)[start:], start)
        return read_ahead(batches, self.prefetch) if self.prefetch else batches

    def _plan(self, index):
        """The epoch as a list of index arrays, one triple per batch:
        (captions [B] into the split's arrays, image_rows [B_img], caption_image [B])."""
        rng = np.random.default_rng((self.seed, index))
        units = self.num_images if self.per_image else self.num_captions
        order = rng.permutation(units)
        plan = []
        for start in range(0, units, self.batch_size):
            picked = order[start:start + self.batch_size]
            if self.per_image:
                captions = [self._captions_of[i] for i in picked]
                plan.append((np.concatenate(captions), self._image_rows[picked],
                             np.repeat(np.arange(len(picked)), [len(c) for c in captions])))
            else:
                plan.append((picked, self._caption_image[picked], np.arange(len(picked))))
        return plan

    def _read(self, index, plan, start):
        """Yield the batches of `plan`, the batches `start`, `start` + 1, ... of epoch `index`;
        the file is opened by whichever thread iterates."""
        with open_cache(self.path) as file:
            for number, (captions, image_rows, caption_image) in enumerate(plan, start):
                rng = np.random.default_rng((self.seed, index, number)) if self.augment else None
                yield self._batch(file["images"], captions, image_rows, caption_image, rng)

    def _batch(self, images, captions, image_rows, caption_image, rng=None):
        """Read and assemble one Batch (shapes in Batch's docstring); augment with `rng`."""
        tokens = self._captions[captions]                               # [B, M]
        T = self._lengths[captions].max() - 1
        inputs = np.ascontiguousarray(tokens[:, :T], dtype=np.int32)
        targets = np.ascontiguousarray(tokens[:, 1:T + 1], dtype=np.int32)
        pixels = read_rows(images, image_rows)                          # uint8 [B_img, 3, S, S]
        if rng is not None and self.zoom > 1:
            pixels = random_zoom(pixels, rng, self.zoom)
        if rng is not None:
            pixels = shift_and_flip(pixels, rng)
        pixels = pixels.astype(np.float32) / 255
        if rng is not None and self.colour_jitter > 0:
            pixels = jitter_colours(pixels, rng, self.colour_jitter)
        if self.mean is not None:
            pixels = (pixels - self.mean[:, None, None]) / self.std[:, None, None]
        return Batch(pixels, inputs, targets, targets != PAD_ID,
                     caption_image.astype(np.int32), image_rows, self._caption_rows[captions])


def shift_and_flip(images, rng, max_shift=None):
    """Each of images[N, C, S, S] moved by a random (dy, dx) in [-max_shift, max_shift]^2
    (border pixels repeated into the gap; default max_shift S // 16) and mirrored left-right
    with probability 1/2. Returns a new array of the same shape and dtype."""
    N, _, S, _ = images.shape
    pad = S // 16 if max_shift is None else max_shift
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")
    offsets = rng.integers(0, 2 * pad + 1, size=(N, 2))
    flips = rng.random(N) < 0.5
    out = np.empty_like(images)
    for n, ((y, x), flip) in enumerate(zip(offsets, flips)):
        window = padded[n, :, y:y + S, x:x + S]
        out[n] = window[:, :, ::-1] if flip else window
    return out


def random_zoom(images, rng, max_zoom):
    """Each of images[N, C, S, S] (uint8) cut to a square window of side w = S / z, z uniform in
    [1, max_zoom], at a uniform place inside the image, and resized back to S x S by bilinear
    interpolation: output pixel i samples the window at y0 + (i + 1/2) w / S - 1/2.
    Returns a new uint8 array of the same shape."""
    N, _, S, _ = images.shape
    sides = S / rng.uniform(1, max_zoom, N)
    corners = rng.uniform(0, 1, (N, 2)) * (S - sides)[:, None]
    out = np.empty_like(images)
    for n in range(N):
        coords = corners[n, :, None] + (np.arange(S) + 0.5) * sides[n] / S - 0.5   # [2, S]
        (y0, y1, fy), (x0, x1, fx) = (interpolation_points(c, S) for c in coords)
        image = images[n].astype(np.float32)
        rows = image[:, y0] * (1 - fy)[:, None] + image[:, y1] * fy[:, None]
        out[n] = np.rint(rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx)
    return out


def interpolation_points(coords, S):
    """For sample positions coords[S] inside [-1/2, S - 1/2]: the pixels either side, lo and
    hi, and the weight of hi, so that value = (1 - weight) * pixel[lo] + weight * pixel[hi]."""
    coords = np.clip(coords, 0, S - 1)
    lo = np.minimum(np.floor(coords).astype(np.int64), S - 2)
    return lo, lo + 1, (coords - lo).astype(np.float32)


def jitter_colours(pixels, rng, amount):
    """Each of pixels[N, 3, S, S] (float32 in [0, 1]) with its saturation, contrast and
    brightness scaled by factors s, c, b uniform in [1 - amount, 1 + amount], in that order:
    x <- g + s (x - g) with g the pixel's grey (ITU-R 601 luma), then x <- m + c (x - m) with m
    the image's mean grey, then x <- b x; clipped to [0, 1]. Hues are kept: captions name them."""
    s, c, b = rng.uniform(1 - amount, 1 + amount, (3, len(pixels), 1, 1, 1)).astype(np.float32)
    luma = np.array([0.299, 0.587, 0.114], np.float32)[:, None, None]
    grey = (pixels * luma).sum(axis=1, keepdims=True)                 # [N, 1, S, S]
    out = grey + s * (pixels - grey)
    mean = grey.mean(axis=(2, 3), keepdims=True)
    out = mean + c * (out - mean)
    return np.clip(b * out, 0, 1)


def read_rows(dataset, rows):
    """dataset[rows] for rows in any order, repeats allowed.

    h5py's list indexing builds one selection per row and runs ~40x slower than reading the
    rows one by one (285 ms against 7 ms for 64 images of 128 px), so each distinct row is read
    on its own, then the block is reordered and repeated as `rows` asks.
    """
    distinct, where = np.unique(rows, return_inverse=True)
    return np.stack([dataset[int(row)] for row in distinct])[where]


def channel_stats(cache_path, chunk=64):
    """Per-channel mean and std of the train split's pixels, on the [0, 1] scale.

    Returns mean[3], std[3] as float32. The images are read `chunk` rows at a time and counted
    into a 256-bin histogram per channel, so memory stays small and the sums are exact integers;
    the std is then computed around the mean (two passes over the bins, not E[x^2] - E[x]^2).
    A constant channel gets std 1, so it is only shifted.
    """
    counts = np.zeros((3, 256), np.int64)
    with open_cache(cache_path) as file:
        images, train = file["images"], file["split"][()] == SPLITS.index("train")
        for start in range(0, len(train), chunk):
            block = images[start:start + chunk][train[start:start + chunk]]
            for c in range(3):
                counts[c] += np.bincount(block[:, c].ravel(), minlength=256)
    n = counts.sum(axis=1)
    if not n.all():
        raise ValueError(f"{os.fspath(cache_path)}: no train images to compute the "
                         f"normalisation from")
    values = np.arange(256) / 255
    mean = counts @ values / n
    std = np.sqrt((counts * (values - mean[:, None]) ** 2).sum(axis=1) / n)
    return mean.astype(np.float32), np.where(std > 0, std, 1).astype(np.float32)


_END = object()                          # what the worker puts after the last item


class _Raised(NamedTuple):
    """What the worker puts when iterating raised, to be re-raised in the consumer."""
    error: BaseException


def read_ahead(items, size):
    """Iterate `items` (a generator) in a daemon thread that keeps up to `size` items waiting.

    The worker puts items on a bounded queue, then _END, or _Raised(error) if iterating raised;
    the caller re-raises that error. When the caller stops, early or not, it sets `stop` and
    keeps emptying the queue until the worker has ended: a worker blocked on a full queue gets
    room to put its item, sees `stop`, and closes `items` (which closes the file it opened).
    """
    buffer = queue.Queue(maxsize=size)
    stop = threading.Event()

    def work():
        try:
            with closing(items):
                for item in items:
                    buffer.put(item)
                    if stop.is_set():
                        return
            buffer.put(_END)
        except BaseException as error:
            buffer.put(_Raised(error))

    worker = threading.Thread(target=work, name="rawcap-read-ahead", daemon=True)
    worker.start()
    try:
        while (item := buffer.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():             # empty the queue until the worker has ended
            try:
                buffer.get(timeout=0.01)
            except queue.Empty:
                pass
