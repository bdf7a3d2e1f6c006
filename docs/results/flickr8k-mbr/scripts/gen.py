"""Throwaway: for one model, on val, dump the beam's finished hypotheses (beam K, alpha) and S samples per image."""
import pickle, sys, time
import numpy as np
from rawcap import decode as D
from rawcap.data.batches import CaptionBatches
from rawcap.data.cache import read_references
from rawcap.ship import load_model

model, out, K, S = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
alpha = 0.5
cache = "/work/f8k/cache-112.h5"
params, config, meta = load_model(model)

def nbest(images, K, T=20, a=alpha):
    """beam_search, returning all K finished hypotheses: list of B lists of (tokens, norm score, logp)."""
    xp = np
    models = D.members(params, config)
    states = D._start(models, images)
    B, L = states[0].feats.shape[:2]
    V = models[0][0]["out_b"].shape[0]
    states = [D.State(*(xp.repeat(x, K, axis=0) for x in state)) for state in states]
    first = xp.full((B, K), -xp.inf); first[:, 0] = 0.0
    live = D.Beams(first, xp.zeros((B, K), np.int64), xp.zeros((B, K, T), np.int64), xp.zeros((B, K, T, L), states[0].feats.dtype))
    finished = live._replace(scores=xp.full((B, K), -xp.inf), lengths=xp.ones((B, K), np.int64))
    words = xp.full(B * K, D.START_ID); done = False
    for t in range(T):
        states, logp, al = D._step(models, states, words)
        cand = live.scores[:, :, None] + logp.reshape(B, K, V)
        flat = cand.reshape(B, K * V)
        best = D._top_k(flat, K)
        ended = best % V == D.END_ID
        ends = D._extend(live, best, xp.where(ended, D._take(flat, best), -xp.inf), al, V, t)
        finished = D._keep_best(finished, ends, K, a)
        flat = xp.where(xp.arange(V) == D.END_ID, -xp.inf, cand).reshape(B, K * V)
        best = D._top_k(flat, K)
        live = D._extend(live, best, D._take(flat, best), al, V, t)
        rows = (xp.arange(B)[:, None] * K + best // V).ravel()
        states = [s._replace(h=s.h[rows], c=s.c[rows]) for s in states]
        words = (best % V).ravel()
        could = live.scores.max(axis=1) / T ** a
        done = bool((D._normalised(finished, a)[:, -1] >= could).all())
        if done: break
    if not done:
        finished = D._keep_best(finished, live, K, a)
    res = []
    norm = D._normalised(finished, a)
    for b in range(B):
        hyps = []
        for k in range(K):
            if not np.isfinite(finished.scores[b, k]): continue
            n = int(finished.lengths[b, k]); row = finished.tokens[b, k]
            n_words = n - int(row[n - 1] == D.END_ID)
            hyps.append((row[:n_words].tolist(), float(norm[b, k]), float(finished.scores[b, k])))
        res.append(hyps)
    return res

references, filenames = read_references(cache, "val")
loader = CaptionBatches(cache, "val", 50, per_image=True)
rng = np.random.default_rng(0)
dt = next(iter(params.values())).dtype
data = {}
t0 = time.time()
for batch in loader.epoch(0):
    images = np.asarray(batch.images, dtype=dt)
    beams = nbest(images, K)
    rep = np.repeat(np.arange(len(images)), S)
    samples = D.sample_decode(params, config, images[rep], rng).tokens if S else []
    for i, row in enumerate(batch.image_rows):
        data[filenames[row]] = dict(beam=beams[i], samples=samples[i * S:(i + 1) * S], row=int(row))
    print(len(data), round(time.time() - t0), flush=True)
pickle.dump(data, open(out, "wb"))
