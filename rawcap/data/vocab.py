"""The vocabulary: words <-> ids, built on the training captions only.

ids 0..3 are the special tokens <pad>, <start>, <end>, <unk>; then every word seen at least
`min_count` times in the training split, most frequent first (ties alphabetical).
A caption of n words becomes [<start>, w_1, ..., w_n, <end>], truncated to `max_length` words.
"""
import json
import os
from collections import Counter

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = range(4)


class Vocabulary:
    """An ordered list of words; a word's id is its position."""

    def __init__(self, words):
        self.words = list(words)
        if tuple(self.words[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}, got {self.words[:4]}")
        self.ids = {word: i for i, word in enumerate(self.words)}
        if len(self.ids) != len(self.words):
            raise ValueError("a vocabulary cannot list a word twice")

    @classmethod
    def build(cls, captions, min_count=5):
        """From an iterable of token lists (the training captions)."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        counts = Counter(word for tokens in captions for word in tokens)
        kept = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(SPECIALS + tuple(kept))

    def __len__(self):
        return len(self.words)

    def encode(self, tokens, max_length):
        """tokens -> ([<start>, ids of the first max_length words, <end>], whether it was cut).

        Unknown words, and words spelled like a special token, become <unk>."""
        ids = [UNK_ID if word in SPECIALS else self.ids.get(word, UNK_ID)
               for word in tokens[:max_length]]
        return [START_ID] + ids + [END_ID], len(tokens) > max_length

    def decode(self, ids):
        """ids -> words, stopping at <end> and leaving out <start> and <pad>."""
        words = []
        for i in ids:
            i = int(i)
            if i == END_ID:
                break
            if i not in (START_ID, PAD_ID):
                words.append(self.words[i])
        return words

    def to_json(self):
        return json.dumps({"words": self.words})

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text)["words"])

    def save(self, path):
        """Write the vocabulary as JSON, atomically (temporary file, then rename)."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_json(f.read())
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}: not a rawcap vocabulary ({e})") from None
