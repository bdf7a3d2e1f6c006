"""Datasets, from files on disk to training batches.

    python -m rawcap.data shapes  --out DIR                      # the built-in dataset
    python -m rawcap.data prepare --data-dir DIR --out FILE.h5   # any Flickr8k layout -> cache
    python -m rawcap.data stats   FILE.h5
    python -m rawcap.data distill FILE.h5 TEACHER_CAPTIONS.json --out NEW.h5   # a student's cache

Modules: `tokenize` (Karpathy's tokenization), `vocab` (the vocabulary), `flickr8k` (readers of
the three layouts people have), `images` (Pillow preprocessing), `cache` (the HDF5 file),
`distill` (a teacher's captions in place of the references), `shapes` (the synthetic dataset),
`batches` (shuffled batches with background prefetch).

The cache, one HDF5 file (I images, K captions, S image size, M = max_length + 2):

    images           uint8  [I, 3, S, S]  RGB, centre-cropped or squashed to S x S (attrs resize)
    filenames        str    [I]           the image file names, as in the caption file
    split            uint8  [I]           0 train, 1 val, 2 test (attrs["split_names"])
    captions         int32  [K, M]        <start> w_1 .. w_n <end> <pad> ..., vocabulary ids
    caption_lengths  int32  [K]           n + 2: the tokens of the row before the padding
    caption_image    int32  [K]           the row of `images` each caption describes
    caption_text     str    [K]           the tokenized caption before truncation and <unk>,
                                          space-joined: the references for the metrics
    attrs            vocab (JSON), image_size, resize (crop|squash), max_length, min_count, layout, data_dir,
                     fingerprint (of the inputs and options), truncated, unk_tokens, skipped (JSON)
"""
