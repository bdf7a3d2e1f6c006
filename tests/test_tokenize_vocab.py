"""tokenize (Karpathy's rules) and Vocabulary: build, encode/decode, truncation, save/load."""
import json

import pytest

from rawcap.data.tokenize import tokenize
from rawcap.data.vocab import END_ID, PAD_ID, SPECIALS, START_ID, UNK_ID, Vocabulary


@pytest.mark.parametrize("caption, tokens", [
    ("A dog's well-kept, muddy ball.", ["a", "dogs", "well", "kept", "muddy", "ball"]),
    ('He said "STOP"; she asked: why?!', ["he", "said", "stop", "she", "asked:", "why"]),
    ("  two   spaces\tand a tab\n", ["two", "spaces", "and", "a", "tab"]),
    ("black-and-white", ["black", "and", "white"]),
    ("A man .", ["a", "man"]),                  # Flickr8k's detached full stop
    ("", []),
    (" . , ! ", []),
])
def test_tokenize_follows_karpathys_rules(caption, tokens):
    assert tokenize(caption) == tokens


def test_tokenize_of_joined_tokens_gives_the_tokens_back():
    for caption in ["A dog's well-kept, muddy ball.", 'Two "quoted" words; OK?']:
        tokens = tokenize(caption)
        assert tokenize(" ".join(tokens)) == tokens


TRAIN = [["the", "dog", "runs"], ["the", "dog", "sits"], ["the", "cat", "runs"], ["a", "zebra"]]


def test_build_counts_words_and_orders_by_frequency_then_alphabet():
    vocab = Vocabulary.build(TRAIN, min_count=2)
    # the: 3, then dog: 2, runs: 2 (a tie: alphabetical); a, cat, sits, zebra: 1 -> left out
    assert vocab.words == ["<pad>", "<start>", "<end>", "<unk>", "the", "dog", "runs"]
    assert (PAD_ID, START_ID, END_ID, UNK_ID) == (0, 1, 2, 3)
    assert [vocab.ids[w] for w in SPECIALS] == [0, 1, 2, 3]
    assert len(Vocabulary.build(TRAIN, min_count=1)) == 4 + 7


def test_build_rejects_min_count_below_one():
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build(TRAIN, min_count=0)


def test_a_vocabulary_must_start_with_the_specials_and_not_repeat():
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="twice"):
        Vocabulary([*SPECIALS, "a", "a"])


def test_encode_decode_round_trip_with_padding():
    vocab = Vocabulary.build(TRAIN, min_count=1)
    tokens = ["a", "zebra", "runs"]
    ids, cut = vocab.encode(tokens, max_length=10)
    assert ids[0] == START_ID and ids[-1] == END_ID and len(ids) == len(tokens) + 2
    assert not cut
    assert vocab.decode(ids + [PAD_ID] * 5) == tokens
    # decoding stops at the first <end>
    assert vocab.decode([START_ID, vocab.ids["a"], END_ID, vocab.ids["dog"], PAD_ID]) == ["a"]


def test_rare_and_unseen_words_become_unk():
    vocab = Vocabulary.build(TRAIN, min_count=2)
    ids, _ = vocab.encode(["the", "zebra", "giraffe", "dog"], max_length=10)   # rare, unseen
    assert ids == [START_ID, vocab.ids["the"], UNK_ID, UNK_ID, vocab.ids["dog"], END_ID]
    assert vocab.decode(ids) == ["the", "<unk>", "<unk>", "dog"]


@pytest.mark.parametrize("n_words, cut", [(4, False), (5, False), (6, True), (9, True)])
def test_encode_truncates_to_max_length_words_and_says_so(n_words, cut):
    vocab = Vocabulary.build(TRAIN, min_count=1)
    tokens = ["a", "dog", "runs", "cat", "sits", "zebra", "a", "dog", "a"][:n_words]
    ids, was_cut = vocab.encode(tokens, max_length=5)
    assert was_cut == cut
    assert len(ids) == min(n_words, 5) + 2 and ids[-1] == END_ID
    assert vocab.decode(ids) == tokens[:5]


def test_save_and_load_give_the_same_vocabulary(tmp_path):
    vocab = Vocabulary.build(TRAIN, min_count=1)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert json.loads(path.read_text())["words"] == vocab.words
    assert Vocabulary.load(path).words == vocab.words
    assert list(tmp_path.iterdir()) == [path]                # no temporary file left


@pytest.mark.parametrize("text", [
    "not json at all",
    '{"no_words": []}',
    '["<pad>", "<start>"]',
    '{"words": ["a", "b"]}',                                  # no special tokens
])
def test_loading_a_bad_vocabulary_file_names_the_file(tmp_path, text):
    path = tmp_path / "broken.vocab.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="broken.vocab.json"):
        Vocabulary.load(path)
