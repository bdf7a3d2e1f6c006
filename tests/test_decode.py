"""Greedy decoding and beam search against plain references: a per-image greedy loop, an
exhaustive search, and teacher-forced log-probabilities of the captions they return."""
import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from rawcap.data.vocab import END_ID, PAD_ID, START_ID
from rawcap.decode import beam_search, decode, greedy_decode
from rawcap.decoder import decode_step, init_decoder
from rawcap.encoder import encode
from rawcap.model import Config, init_params

TINY = dict(vocab_size=9, image_size=8, channels=(3, 4), embed_size=5, hidden_size=6,
            attention_size=4)


def tiny_model(seed, vocab_size=9, n_images=4, cell="lstm"):
    """A tiny Config, float64 params and images [n, 3, 8, 8]: big enough random weights and
    images of different brightness, so that captions differ in words and length."""
    rng = np.random.default_rng(seed)
    config = Config(**{**TINY, "vocab_size": vocab_size, "cell": cell})
    params = init_params(config, rng, np.float64)
    for name in params:
        params[name] += 0.5 * rng.standard_normal(params[name].shape)
    params["embed_w"] *= 5
    params["out_w"] *= 3
    images = rng.random((n_images, 3, 8, 8)) ** rng.uniform(0.2, 5, (n_images, 1, 1, 1))
    return config, params, images


def reference_log_probs(params, h):
    """log-softmax of one step's logits [V], with <pad> and <start> impossible."""
    logits = h @ params["out_w"] + params["out_b"]
    logits[[PAD_ID, START_ID]] = -np.inf
    return logits - logsumexp(logits)


def run_words(params, config, image, words):
    """Teacher-force <start> + words through the decoder of one image [3, S, S]
    -> the log-probabilities [len(words) + 1, V] of the word after each prefix."""
    feats, _ = encode(params, config, image[None])
    proj, h, c, _ = init_decoder(params, feats)
    out = []
    for w in [START_ID] + list(words):
        h, c, _, _ = decode_step(params, config, feats, proj, h, c, params["embed_w"][[w]])
        out.append(reference_log_probs(params, h[0]))
    return np.array(out)


def caption_log_prob(params, config, image, words, max_length):
    """log p(words, then <end>) of one image; a caption of max_length words was cut: no <end>."""
    logp = run_words(params, config, image, words)
    total = sum(logp[t, w] for t, w in enumerate(words))
    return total + (logp[len(words), END_ID] if len(words) < max_length else 0.0)


def reference_greedy(params, config, image, max_length):
    """One image, one word at a time, argmax at every step."""
    words = []
    while len(words) < max_length:
        w = int(run_words(params, config, image, words)[-1].argmax())
        if w == END_ID:
            break
        words.append(w)
    return words


def reference_beam(params, config, image, K, T, a):
    """The same beam search, written plainly for one image with lists and no early stop
    -> (words, log-probability / tokens ** a)."""
    live, finished = [(0.0, [])], []
    for _ in range(T):
        candidates = sorted(((s + lp, words + [w]) for s, words in live
                             for w, lp in enumerate(run_words(params, config, image, words)[-1])
                             if lp > -np.inf), key=lambda c: -c[0])
        finished += [c for c in candidates[:K] if c[1][-1] == END_ID]
        live = [c for c in candidates if c[1][-1] != END_ID][:K]
    score, words = max(finished + live, key=lambda c: c[0] / len(c[1]) ** a)
    return [w for w in words if w != END_ID], score / len(words) ** a


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_matches_a_per_image_reference_loop(seed):
    config, params, images = tiny_model(seed)
    got = greedy_decode(params, config, images, max_length=6)
    for i, image in enumerate(images):
        assert got.tokens[i] == reference_greedy(params, config, image, 6)
        expected = caption_log_prob(params, config, image, got.tokens[i], 6)
        assert got.scores[i] == pytest.approx(expected)
    assert got.scores.dtype == np.float64


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_beam_of_one_is_greedy_and_wider_beams_score_at_least_as_well(seed):
    config, params, images = tiny_model(seed)
    greedy = greedy_decode(params, config, images, max_length=7)
    one = beam_search(params, config, images, beam_size=1, max_length=7, length_normalization=0)
    assert one.tokens == greedy.tokens
    np.testing.assert_allclose(one.scores, greedy.scores, rtol=1e-12)
    # Not a theorem (a beam can prune greedy's prefix for ones that end worse), but true here.
    for k in (2, 3, 5):
        beam = beam_search(params, config, images, beam_size=k, max_length=7,
                           length_normalization=0)
        assert np.all(beam.scores >= greedy.scores - 1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("K, a", [(2, 0.0), (3, 0.7), (3, 1.0), (4, 2.0)])
def test_beam_search_matches_a_plain_per_image_reference(seed, K, a):
    config, params, images = tiny_model(seed)
    check_beam_against_reference(config, params, images, K, a)


@pytest.mark.parametrize("seed", range(2))
def test_greedy_and_beam_search_with_the_rnn_decoder(seed):
    """The RNN's empty [B, 0] cell state goes through the batch, the beam's repeat and its
    reordering like an LSTM's c."""
    config, params, images = tiny_model(seed, cell="rnn")
    got = greedy_decode(params, config, images, max_length=6)
    for i, image in enumerate(images):
        assert got.tokens[i] == reference_greedy(params, config, image, 6)
    check_beam_against_reference(config, params, images, 3, 0.7)


def check_beam_against_reference(config, params, images, K, a):
    got = beam_search(params, config, images, beam_size=K, max_length=6, length_normalization=a)
    for i, image in enumerate(images):
        words, score = reference_beam(params, config, image, K, 6, a)
        assert got.tokens[i] == words
        assert got.scores[i] == pytest.approx(score)


@pytest.mark.parametrize("seed", range(6))
def test_a_wide_beam_finds_the_exhaustive_best(seed):
    config, params, images = tiny_model(seed, vocab_size=5)
    V, T = 5, 3
    words = [w for w in range(V) if w not in (PAD_ID, START_ID, END_ID)]
    captions = [list(c) for n in range(T + 1) for c in itertools.product(words, repeat=n)]
    got = beam_search(params, config, images, beam_size=V * V, max_length=T, length_normalization=0)
    for i, image in enumerate(images):
        scores = [caption_log_prob(params, config, image, c, T) for c in captions]
        assert got.tokens[i] == captions[int(np.argmax(scores))]
        assert got.scores[i] == pytest.approx(max(scores))


@pytest.mark.parametrize("a", [0.0, 0.7, 1.0])
def test_scores_are_the_teacher_forced_log_probabilities(a):
    config, params, images = tiny_model(5)
    got = beam_search(params, config, images, beam_size=3, max_length=6, length_normalization=a)
    for i, image in enumerate(images):
        words = got.tokens[i]
        tokens = len(words) + (len(words) < 6)                  # <end> is scored when there is one
        expected = caption_log_prob(params, config, image, words, 6) / tokens ** a
        assert got.scores[i] == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_the_mean_per_token_never_picks_a_shorter_caption_than_the_sum(seed):
    """Both modes grow the same hypotheses; if the sum S picks c1 and the mean S/n picks c2,
    S1 >= S2 and S2/n2 >= S1/n1 (all S <= 0) allow n2 < n1 only on a tie."""
    config, params, images = tiny_model(seed, n_images=8)
    plain = beam_search(params, config, images, beam_size=4, max_length=8, length_normalization=0)
    mean = beam_search(params, config, images, beam_size=4, max_length=8, length_normalization=1)
    lengths = np.array([[len(p), len(m)] for p, m in zip(plain.tokens, mean.tokens)])
    assert np.all(lengths[:, 0] <= lengths[:, 1]) and np.any(lengths[:, 0] < lengths[:, 1])


@pytest.mark.parametrize("a, words, score", [
    (0.0, [], np.log(0.4)),                             # the plain sum: the empty caption
    (0.5, [4, 4, 4], 3 * np.log(0.6) / np.sqrt(3)),     # -0.885 beats the empty one's -0.916
    (1.0, [4, 4, 4], np.log(0.6)),                      # per token: the longest caption
])
def test_the_length_penalty_changes_the_winner_as_computed_by_hand(a, words, score):
    """A model that ignores the image and the words so far: every step says <end> with
    probability 0.4 and word 4 with 0.6 (the rest ~0). With T = 3 the captions to rank are

        caption     log-probability          tokens   / tokens^0.5   / tokens^1
        ""          log 0.4           = -0.916   1      -0.916         -0.916
        "w"         log 0.6 + log 0.4 = -1.427   2      -1.009         -0.714
        "w w"       2 log 0.6 + log 0.4 = -1.938 3      -1.119         -0.646
        "w w w"     3 log 0.6         = -1.532   3      -0.885         -0.511   (cut at T, no <end>)

    so alpha 0 picks the empty caption and alpha 0.5 and 1 the cut one."""
    config, params, images = tiny_model(0)
    params["out_w"][:] = 0.0
    params["out_b"][:] = -1e4
    params["out_b"][[END_ID, 4]] = np.log([0.4, 0.6])
    got = decode(params, config, images, beam_size=2, max_length=3, length_normalization=a)
    assert got.tokens == [words] * len(images)
    np.testing.assert_allclose(got.scores, score, rtol=1e-9)


@pytest.mark.parametrize("a", [0.0, 1.0])
def test_decode_passes_the_length_penalty_to_beam_search(a):
    config, params, images = tiny_model(13)
    got = decode(params, config, images, beam_size=3, max_length=6, length_normalization=a)
    expected = beam_search(params, config, images, beam_size=3, max_length=6, length_normalization=a)
    assert got.tokens == expected.tokens
    np.testing.assert_array_equal(got.scores, expected.scores)


@pytest.mark.parametrize("search", [greedy_decode, beam_search])
def test_a_model_that_always_ends_writes_empty_captions(search):
    config, params, images = tiny_model(7)
    params["out_b"][END_ID] = 50.0
    got = search(params, config, images, max_length=5)
    assert got.tokens == [[]] * 4
    assert all(a.shape == (0, config.locations) for a in got.alphas)
    np.testing.assert_allclose(got.scores, 0.0, atol=1e-12)


@pytest.mark.parametrize("search", [greedy_decode, beam_search])
def test_a_model_that_never_ends_stops_at_max_length(search):
    config, params, images = tiny_model(8)
    params["out_b"][END_ID] = -50.0
    got = search(params, config, images, max_length=4)
    assert [len(t) for t in got.tokens] == [4] * 4
    assert all(a.shape == (4, config.locations) for a in got.alphas)


@pytest.mark.parametrize("search", [greedy_decode, beam_search])
def test_pad_and_start_are_never_written_and_attention_rows_sum_to_one(search):
    config, params, images = tiny_model(9)
    params["out_b"][[PAD_ID, START_ID]] = 50.0          # the likeliest logits, yet masked out
    got = search(params, config, images, max_length=6)
    for tokens, alphas in zip(got.tokens, got.alphas):
        assert PAD_ID not in tokens and START_ID not in tokens and END_ID not in tokens
        assert alphas.shape == (len(tokens), config.locations)
        np.testing.assert_allclose(alphas.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("search", [greedy_decode, beam_search])
def test_a_batch_equals_one_image_at_a_time(search):
    config, params, images = tiny_model(10)
    batch = search(params, config, images, max_length=6)
    for i in range(len(images)):
        one = search(params, config, images[i:i + 1], max_length=6)
        assert one.tokens[0] == batch.tokens[i]
        assert one.scores[0] == pytest.approx(batch.scores[i], rel=1e-12)
        np.testing.assert_allclose(one.alphas[0], batch.alphas[i], rtol=1e-12)


def test_alphas_are_the_attention_of_each_word():
    config, params, images = tiny_model(11)
    got = beam_search(params, config, images, beam_size=3, max_length=6)
    for i, image in enumerate(images):
        feats, _ = encode(params, config, image[None])
        proj, h, c, _ = init_decoder(params, feats)
        words = got.tokens[i]
        for t, w in enumerate(([START_ID] + words)[:len(words)]):
            h, c, alpha, _ = decode_step(params, config, feats, proj, h, c, params["embed_w"][[w]])
            np.testing.assert_allclose(got.alphas[i][t], alpha[0], rtol=1e-12)


def test_decode_picks_greedy_or_beam_and_float32_runs():
    config, params, images = tiny_model(12)
    assert decode(params, config, images).tokens == greedy_decode(params, config, images).tokens
    beam = decode(params, config, images, beam_size=3, max_length=5)
    expected = beam_search(params, config, images, beam_size=3, max_length=5)
    assert beam.tokens == expected.tokens
    np.testing.assert_array_equal(beam.scores, expected.scores)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    got = decode(p32, config, images.astype(np.float32), beam_size=3, max_length=5)
    assert got.scores.dtype == np.float64 and got.alphas[0].dtype == np.float32


@pytest.mark.parametrize("kwargs", [dict(beam_size=0), dict(max_length=0),
                                    dict(length_normalization=-0.5)])
def test_bad_sizes_raise(kwargs):
    config, params, images = tiny_model(0)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        beam_search(params, config, images, **kwargs)


@pytest.mark.parametrize("search", [greedy_decode, beam_search])
def test_an_ensemble_of_one_model_or_of_two_copies_decodes_as_the_model(search):
    config, params, images = tiny_model(13)
    alone = search(params, config, images, max_length=6)
    for ensemble in ((params,), (params, params)):
        got = search(ensemble, (config,) * len(ensemble), images, max_length=6)
        assert got.tokens == alone.tokens
        np.testing.assert_allclose(got.scores, alone.scores, rtol=1e-12)
        for a, b in zip(got.alphas, alone.alphas):
            np.testing.assert_array_equal(a, b)


def test_an_ensemble_follows_the_mean_of_its_members_log_probabilities():
    """Greedy on two different models = argmax of the mean of their per-image reference
    log-probabilities, word by word; the score is the sum of those means."""
    (config, first, images), (_, second, _) = tiny_model(14), tiny_model(15)
    got = greedy_decode((first, second), (config, config), images, max_length=6)
    for i, image in enumerate(images):
        words = []
        while True:
            logp = (run_words(first, config, image, words)[-1]
                    + run_words(second, config, image, words)[-1]) / 2
            if logp.argmax() == END_ID or len(words) == 6:
                break
            words.append(int(logp.argmax()))
        assert got.tokens[i] == words
        steps = [(run_words(first, config, image, words[:t])[-1]
                  + run_words(second, config, image, words[:t])[-1]) / 2 for t in range(len(words) + 1)]
        total = sum(steps[t][w] for t, w in enumerate(words))
        total += steps[len(words)][END_ID] if len(words) < 6 else 0.0
        assert got.scores[i] == pytest.approx(total, rel=1e-12)
    assert got.tokens != greedy_decode(first, config, images, max_length=6).tokens


def test_an_ensemble_needs_a_config_per_model():
    config, params, images = tiny_model(0)
    with pytest.raises(ValueError, match="as many configs"):
        greedy_decode((params, params), (config,), images)
