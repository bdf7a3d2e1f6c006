"""Writing captions: greedy decoding, sampling and beam search, with the attention map of every word.

Shape key: B images, K beam size, T = max_length, L image locations, H hidden size,
V vocabulary.

Both searches run the B images together, as one batch, through the model's own
`encode`, `init_decoder` and `decode_step`; at each step

    log p(w | image, words so far) = log_softmax(h @ Wout + bout)     <pad>, <start> masked out

Greedy takes the most likely word until <end> or T words; sampling (for self-critical
training) draws each word from the softmax instead. Beam search keeps the K best
hypotheses (by the sum of their log-probabilities) of every image, in a batch of B * K rows:

    every hypothesis is extended by every word: B x (K * V) candidates
    those of each image's K best candidates that end in <end> are finished
    the K best candidates that do not end in <end> stay live; h, c follow their parent rows
    stop when each image has K finished hypotheses that no live one can beat, or after T words

A finished caption of n words has n + 1 scored tokens (its words and <end>); one cut at T words
has T. Beam search compares finished captions by score / tokens ** length_normalization:
0 is the plain sum of log-probabilities, which favours short captions (every word costs
probability); 1 is the mean log-probability per token. The default, 0.7, lies between them, as
in Wu et al. 2016 (GNMT), who found 0.6 to 0.7 best for translation.

An ensemble (params and config given as equal-length tuples: several trained models with one
vocabulary) decodes as one model whose next-word log-probabilities are the mean of its
members', each member running its own encoder and decoder state; the attention maps reported
are the first member's.
"""
from typing import NamedTuple

import numpy as np

from .backend import array_module, to_numpy
from .data.vocab import END_ID, PAD_ID, START_ID
from .decoder import decode_step, init_decoder
from .layers.loss import log_softmax
from .encoder import encode
from .output import output_forward

LENGTH_NORMALIZATION = 0.7
BEAM_SIZE = 3                       # what caption and evaluate use unless told (or the model says)


def decoding(beam, length_penalty=LENGTH_NORMALIZATION):
    """"greedy", "beam 3", or "beam 3, length penalty 0.5" (the penalty only when not the default)."""
    if beam == 1:
        return "greedy"
    if length_penalty == LENGTH_NORMALIZATION:
        return f"beam {beam}"
    return f"beam {beam}, length penalty {length_penalty:g}"


class Captions(NamedTuple):
    """One caption per image, on the host (NumPy), whatever device ran the model.

    tokens  list of B lists of word ids, without <start> and <end>
    scores  float64 [B]: the caption's log-probability (its words and <end>, if it ended);
            beam search divides it by tokens ** length_normalization
    alphas  list of B arrays [n_words, L]: the attention map that produced each word
    """
    tokens: list
    scores: np.ndarray
    alphas: list


class Beams(NamedTuple):
    """K hypotheses per image. scores[B, K] float64: sums of log-probabilities (-inf: none);
    lengths[B, K]: tokens generated, <end> included; tokens[B, K, T]; alphas[B, K, T, L]."""
    scores: object
    lengths: object
    tokens: object
    alphas: object


def members(params, config):
    """[(params, config), ...]: the models that decode together (one, or an ensemble's)."""
    if isinstance(params, (tuple, list)):
        if not isinstance(config, (tuple, list)) or len(config) != len(params) or not params:
            raise ValueError("an ensemble needs as many configs as parameter sets, at least one")
        return list(zip(params, config))
    return [(params, config)]


def decode(params, config, images, beam_size=1, max_length=20,
           length_normalization=LENGTH_NORMALIZATION):
    """images[B, 3, S, S] in [0, 1] -> Captions: greedy when beam_size is 1 (which has no use
    for length_normalization), else beam search. params, config: one model's, or tuples of an
    ensemble's (module docstring)."""
    if beam_size == 1:
        return greedy_decode(params, config, images, max_length)
    return beam_search(params, config, images, beam_size, max_length, length_normalization)


def greedy_decode(params, config, images, max_length=20):
    """images[B, 3, S, S] in [0, 1] -> Captions: the most likely word at every step."""
    return _one_path(params, config, images, max_length, lambda logp: logp.argmax(axis=1))


def sample_decode(params, config, images, rng, max_length=20):
    """images[B, 3, S, S] in [0, 1] -> Captions: every word drawn from the model's softmax,
    p(w | image, words so far), as self-critical training samples them (rawcap.scst).

    rng: a NumPy Generator. Each word is found by inverse CDF, the first w whose cumulative
    probability reaches u * sum(p) for a uniform u in (0, 1] drawn on the host, so one seed
    gives the same captions on either device. <pad> and <start> have probability 0."""
    def draw(logp):
        xp = array_module(logp)
        p = xp.exp(logp)
        u = xp.asarray(1 - rng.random((len(p), 1)), dtype=p.dtype) * p.sum(axis=1, keepdims=True)
        return xp.minimum((xp.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
    return _one_path(params, config, images, max_length, draw)


def _one_path(params, config, images, max_length, choose):
    """One caption per image, word by word: choose(log-probabilities [B, V]) -> words [B]."""
    _check(1, max_length)
    xp = array_module(images)
    models = members(params, config)
    states = _start(models, images)
    B, L = states[0].feats.shape[:2]
    words = xp.full(B, START_ID)
    scores = xp.zeros(B, np.float64)
    lengths = xp.zeros(B, np.int64)                 # tokens generated, <end> included
    tokens = xp.zeros((B, max_length), np.int64)
    alphas = xp.zeros((B, max_length, L), states[0].feats.dtype)
    live = xp.ones(B, bool)
    for t in range(max_length):
        states, logp, alphas[:, t] = _step(models, states, words)
        words = choose(logp)
        tokens[:, t] = words
        scores += xp.where(live, logp[xp.arange(B), words], 0.0)
        lengths += live
        live &= words != END_ID
        if not live.any():
            break
    return _captions(tokens, lengths, scores, alphas)


def beam_search(params, config, images, beam_size=3, max_length=20,
                length_normalization=LENGTH_NORMALIZATION):
    """images[B, 3, S, S] in [0, 1] -> Captions: the best of beam_size finished hypotheses,
    scores divided by tokens ** length_normalization (0: the plain log-probability)."""
    _check(beam_size, max_length, length_normalization)
    xp = array_module(images)
    K, T, a = beam_size, max_length, length_normalization
    models = members(params, config)
    states = _start(models, images)
    B, L = states[0].feats.shape[:2]
    V = models[0][0]["out_b"].shape[0]
    # Row b * K + k is beam k of image b. The K rows of an image share its features, so feats
    # and proj never need reordering: a hypothesis's parent is always a row of the same image.
    states = [State(*(xp.repeat(x, K, axis=0) for x in state)) for state in states]
    first = xp.full((B, K), -xp.inf)
    first[:, 0] = 0.0                       # K copies of <start>: keep one, or all K stay equal
    live = Beams(first, xp.zeros((B, K), np.int64), xp.zeros((B, K, T), np.int64),
                 xp.zeros((B, K, T, L), states[0].feats.dtype))
    finished = live._replace(scores=xp.full((B, K), -xp.inf), lengths=xp.ones((B, K), np.int64))
    words = xp.full(B * K, START_ID)
    done = False
    for t in range(T):
        states, logp, alpha = _step(models, states, words)
        candidates = live.scores[:, :, None] + logp.reshape(B, K, V)
        flat = candidates.reshape(B, K * V)         # index k * V + w: beam k, then word w
        # Of each image's K best extensions, those that end in <end> are finished ...
        best = _top_k(flat, K)
        ended = best % V == END_ID
        ends = _extend(live, best, xp.where(ended, _take(flat, best), -xp.inf), alpha, V, t)
        finished = _keep_best(finished, ends, K, a)
        # ... and the K best that do not end stay live; h and c follow their parent rows.
        flat = xp.where(xp.arange(V) == END_ID, -xp.inf, candidates).reshape(B, K * V)
        best = _top_k(flat, K)
        live = _extend(live, best, _take(flat, best), alpha, V, t)
        rows = (xp.arange(B)[:, None] * K + best // V).ravel()
        states = [state._replace(h=state.h[rows], c=state.c[rows]) for state in states]
        words = (best % V).ravel()
        # A live hypothesis only loses log-probability, but may gain tokens up to T.
        could_become = live.scores.max(axis=1) / T ** a
        done = bool((_normalised(finished, a)[:, -1] >= could_become).all())
        if done:
            break
    if not done:                            # cut at T words: finished as they are
        finished = _keep_best(finished, live, K, a)
    pick = (xp.arange(B), 0)
    return _captions(finished.tokens[pick], finished.lengths[pick],
                     _normalised(finished, a)[pick], finished.alphas[pick])


def _check(beam_size, max_length, length_normalization=0.0):
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    if length_normalization < 0:
        raise ValueError(f"length_normalization must be at least 0, got {length_normalization}")


class State(NamedTuple):
    """One model's decoder state: feats[B, L, D], proj[B, L, A], h[B, H], c[B, H]."""
    feats: object
    proj: object
    h: object
    c: object


def _start(models, images):
    """images[B, 3, S, S] -> each model's State at t = 0 (its features and h0, c0)."""
    states = []
    for params, config in models:
        feats, _ = encode(params, config, images)
        proj, h, c, _ = init_decoder(params, feats)
        states.append(State(feats, proj, h, c))
    return states


def _step(models, states, words):
    """One step of every model on the previous words[B] -> the new states, the mean of the
    models' next-word log-probabilities [B, V], and the first model's attention alpha[B, L]."""
    stepped, logp, alpha = [], 0.0, None
    for (params, config), state in zip(models, states):
        word_vectors = params["embed_w"][words]
        h, c, step_alpha, _ = decode_step(params, config, *state, word_vectors)
        stepped.append(state._replace(h=h, c=c))
        logp = logp + _log_probs(params, h, word_vectors, step_alpha, state.feats)
        alpha = step_alpha if alpha is None else alpha
    return stepped, logp / len(models), alpha


def _log_probs(params, h, word_vectors, alpha, feats):
    """h[N, H], the step's input word_vectors[N, E], alpha[N, L] and feats[N, L, D] ->
    log-probabilities of the next word [N, V], by a stable log-softmax
    (x - max - log sum exp(x - max)); <pad> and <start> get -inf, so are never chosen."""
    logits = output_forward(params, h[:, None], word_vectors[:, None], alpha[:, None], feats)[0][:, 0]
    logits[:, [PAD_ID, START_ID]] = -array_module(h).inf
    return log_softmax(logits, out=logits)


def _top_k(x, k):
    """x[B, M] -> the columns of each row's k largest entries [B, k], largest first."""
    xp = array_module(x)
    cols = xp.argpartition(-x, k - 1, axis=1)[:, :k]
    return _take(cols, xp.argsort(-_take(x, cols), axis=1))


def _take(x, cols):
    """x[B, M], cols[B, k] -> x[b, cols[b, j]] [B, k]."""
    return x[array_module(x).arange(x.shape[0])[:, None], cols]


def _extend(beams, best, scores, alpha, V, t):
    """The hypotheses beams[b, best // V] followed by word best % V (best[B, K] indexes
    K * V candidates), with that step's attention alpha[B * K, L] and the given scores."""
    xp = array_module(best)
    B, K = best.shape
    image, parent = xp.arange(B)[:, None], best // V
    tokens, alphas = beams.tokens[image, parent], beams.alphas[image, parent]
    tokens[:, :, t] = best % V
    alphas[:, :, t] = alpha.reshape(B, K, -1)[image, parent]
    return Beams(scores, xp.full((B, K), t + 1), tokens, alphas)


def _normalised(beams, a):
    """The scores [B, K] that rank hypotheses: log-probability / tokens ** a."""
    return beams.scores / beams.lengths ** a


def _keep_best(x, y, K, a):
    """The K best of the hypotheses x and y [B, K each] by normalised score, best first."""
    xp = array_module(x.scores)
    both = Beams(*(xp.concatenate([u, v], axis=1) for u, v in zip(x, y)))
    best = _top_k(_normalised(both, a), K)
    image = xp.arange(best.shape[0])[:, None]
    return Beams(*(field[image, best] for field in both))


def _captions(tokens, lengths, scores, alphas):
    """tokens[B, T], lengths[B] (tokens generated, <end> included), scores[B], alphas[B, T, L]
    -> Captions, with <end> and its attention map dropped."""
    tokens, lengths, alphas = to_numpy(tokens), to_numpy(lengths), to_numpy(alphas)
    n_words = [int(n) - int(row[n - 1] == END_ID) for row, n in zip(tokens, lengths)]
    return Captions([row[:n].tolist() for row, n in zip(tokens, n_words)],
                    to_numpy(scores).astype(np.float64),
                    [a[:n] for a, n in zip(alphas, n_words)])
