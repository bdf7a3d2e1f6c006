"""Throwaway: the chosen MBR setting -> captions json.  apply.py DUMP OUT.json K LAM"""
import json, math, pickle, sys
import numpy as np
from rawcap.data.cache import open_cache, read_references
from rawcap.data.vocab import Vocabulary
from rawcap.metrics import bleu, cider_d, ngrams

cache = "/work/f8k/cache-112.h5"
with open_cache(cache) as f:
    vocab = Vocabulary.from_json(f.attrs["vocab"])
val_refs, _ = read_references(cache, "val")

def sbleu(hyp, refs):
    if not hyp: return 0.0
    logs = 0.0
    for n in range(1, 5):
        h = ngrams(hyp, n); rc = [ngrams(r, n) for r in refs]
        correct = sum(min(c, max(x[g] for x in rc)) for g, c in h.items())
        guessed = max(len(hyp) - n + 1, 0)
        add = 0 if n == 1 else 1
        logs += math.log((correct + add + 1e-9) / (guessed + add + 1e-9)) / 4
    r = min((len(x) for x in refs), key=lambda m: (abs(m - len(hyp)), m))
    return math.exp(logs + min(0.0, 1 - r / len(hyp)))

if __name__ == "__main__":
    dump, out, K, lam = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    data = pickle.load(open(dump, "rb"))
    names = sorted(data)
    chosen, top1 = {}, {}
    for n in names:
        cands = [(vocab.decode(t), s) for t, s, _ in data[n]["beam"]][:K]
        samples = [vocab.decode(t) for t in data[n]["samples"]]
        u = np.array([np.mean([sbleu(c, [r]) for r in samples]) for c, _ in cands])
        s = np.array([x for _, x in cands])
        chosen[n] = " ".join(cands[int(np.argmax(u / (u.std() + 1e-9) + lam * s))][0])
        top1[n] = " ".join(cands[0][0])
    refs = [val_refs[data[n]["row"]] for n in names]
    for label, caps in (("beam top-1", top1), ("mbr", chosen)):
        hyps = [caps[n].split() for n in names]
        print(f"{label}: BLEU-4 {bleu(refs, hyps)[3]:.4f} CIDEr-D {cider_d(refs, hyps):.3f} distinct {len(set(caps.values()))}")
    json.dump(chosen, open(out, "w"), indent=1, sort_keys=True)
