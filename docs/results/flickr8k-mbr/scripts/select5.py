"""Throwaway: MBR over beam 5's finished hypotheses, pseudo-references the 20 samples of the beam-10 dump.
select5.py MODEL BASELINE_CAPTIONS.json LAMBDAS [OUT.json]  (one lambda when OUT is given)"""
import json, pickle, sys
import numpy as np
from apply import sbleu, vocab, val_refs       # the same utility as before
from rawcap.metrics import bleu, cider_d

model, baseline, lams = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split(",")]
beams = pickle.load(open(f"/work/mbr/{model}_k5.pkl", "rb"))
samples = pickle.load(open(f"/work/mbr/{model}_k10.pkl", "rb"))
names = sorted(beams)
base = json.load(open(baseline))
top1 = {n: " ".join(vocab.decode(beams[n]["beam"][0][0])) for n in names}
assert top1 == base, f"{sum(top1[n] != base[n] for n in names)} first choices differ from {baseline}"
refs = [val_refs[beams[n]["row"]] for n in names]
U, S, C = {}, {}, {}
for n in names:
    C[n] = [vocab.decode(t) for t, _, _ in beams[n]["beam"]]
    pseudo = [vocab.decode(t) for t in samples[n]["samples"]]
    U[n] = np.array([np.mean([sbleu(c, [r]) for r in pseudo]) for c in C[n]])
    S[n] = np.array([s for _, s, _ in beams[n]["beam"]])
def score(caps):
    hyps = [caps[n].split() for n in names]
    return bleu(refs, hyps)[3], cider_d(refs, hyps), len(set(caps.values()))
print(f"{model} beam 5 first choice: BLEU-4 %.4f CIDEr-D %.3f distinct %d" % score(top1))
for lam in lams:
    caps = {n: " ".join(C[n][int(np.argmax(U[n] / (U[n].std() + 1e-9) + lam * S[n]))]) for n in names}
    print(f"{model} MBR lambda {lam:<4}: BLEU-4 %.4f CIDEr-D %.3f distinct %d" % score(caps), flush=True)
    if len(sys.argv) > 4:
        json.dump(caps, open(sys.argv[4], "w"), indent=1, sort_keys=True)
