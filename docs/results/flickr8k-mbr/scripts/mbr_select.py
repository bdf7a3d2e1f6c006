"""Throwaway: MBR selection variants on a gen.py dump, scored on val."""
import math, pickle, sys
from collections import Counter
import numpy as np
from rawcap.data.cache import open_cache, read_references
from rawcap.data.vocab import Vocabulary
from rawcap.metrics import bleu, cider_d, ngrams, tfidf
from apply import sbleu     # the utility, in this folder

cache = "/work/f8k/cache-112.h5"
with open_cache(cache) as f:
    vocab = Vocabulary.from_json(f.attrs["vocab"])
val_refs, val_names = read_references(cache, "val")
train_refs, _ = read_references(cache, "train")
df = Counter()
for refs in train_refs.values():
    df.update({g for r in refs for n in range(1, 5) for g in ngrams(r, n)})
logI = math.log(len(train_refs))

def cider_vs(hyp, refs_tf):
    hv, hn = tfidf(hyp, df, logI)
    tot = 0.0
    for (rv, rn), rl in refs_tf:
        pen = math.exp(-(len(hyp) - rl) ** 2 / 72.0)
        s = 0.0
        for n in range(4):
            norm = hn[n] * rn[n]
            if norm > 0:
                s += sum(min(w, rv[n].get(g, 0.0)) * rv[n].get(g, 0.0) for g, w in hv[n].items()) / norm
        tot += s / 4 * pen
    return 10 * tot / len(refs_tf)

def corpus(names, chosen):
    refs = [val_refs[data[n]["row"]] for n in names]
    return bleu(refs, chosen)[3], cider_d(refs, chosen)

data = pickle.load(open(sys.argv[1], "rb"))
names = sorted(data)
words = lambda toks: vocab.decode(toks)
# per image: candidates (words, norm score), pseudo-ref sets
feat = {}
for n in names:
    d = data[n]
    cands = [(words(t), s) for t, s, _ in d["beam"]]
    samples = [words(t) for t in d["samples"]]
    feat[n] = (cands, samples)

K = int(sys.argv[2]) if len(sys.argv) > 2 else 99
print("top-1:", corpus(names, [feat[n][0][0][0] for n in names]))
for util in sys.argv[4].split(","):
    for pseudo in sys.argv[5].split(","):
        U = {}
        for n in names:
            cands, samples = feat[n]
            cands = cands[:K]
            beamrefs = [c for c, _ in cands]
            refs = {"samples": samples, "beam": beamrefs, "both": samples + beamrefs}[pseudo]
            if util == "bleu":
                U[n] = [np.mean([sbleu(c, [r]) for r in refs if r is not c]) for c, _ in cands]
            else:
                tf = [(tfidf(r, df, logI), len(r)) for r in refs]
                U[n] = [cider_vs(c, [t for t, r in zip(tf, refs) if r is not c]) for c, _ in cands]
        for lam in [float(x) for x in sys.argv[3].split(",")]:
            chosen = []
            for n in names:
                cands = feat[n][0][:K]
                u = np.array(U[n]); s = np.array([x for _, x in cands])
                chosen.append(cands[int(np.argmax(u / (u.std() + 1e-9) + lam * s))][0] if lam else cands[int(np.argmax(u))][0])
            b4, c = corpus(names, chosen)
            print(f"{util:5s} {pseudo:7s} lam {lam:<4} BLEU-4 {b4:.4f} CIDEr-D {c:.3f} distinct {len(set(map(tuple, chosen)))}", flush=True)
