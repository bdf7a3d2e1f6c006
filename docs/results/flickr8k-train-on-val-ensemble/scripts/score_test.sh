#!/bin/bash
# The plan's scoring, run from the repository root once both runs have finished:
#   docs/results/flickr8k-train-on-val-ensemble/scripts/score_test.sh RUNS CACHE
# RUNS holds tv3/ and tv4/ (python -m rawcap.train ...the recipe... --train-on-val --seed 3 / 4
# --out RUNS/tvN); CACHE is the recipe's cache (python -m rawcap.data prepare --size 112 --resize squash).
set -euo pipefail
RUNS=$1; CACHE=$2; HERE=docs/results/flickr8k-train-on-val-ensemble
EARLIER=docs/results/flickr8k-train-on-val
DECODING="--beam 5 --length-penalty 0.5"
for seed in 3 4; do
    python -m rawcap.ship "$RUNS/tv$seed/last.h5" --out "$RUNS/tv$seed.h5" $DECODING
done
# Is the re-run of tv3 the earlier tv3? Its log (all but the timing columns) and its test captions.
python - "$RUNS/tv3/log.csv" "$EARLIER/tv3_log.csv" <<'PY' | tee "$HERE/tv3_rerun_check.txt"
import csv, sys
rows = [[{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")}
         for r in csv.DictReader(open(path))] for path in sys.argv[1:]]
same = sum(a == b for a, b in zip(*rows))
print(f"log.csv of the re-run against the committed tv3_log.csv: {same} of {len(rows[1])} epochs "
      f"identical in every column but the timings")
PY
python -m rawcap.evaluate "$RUNS/tv3.h5" --split test $DECODING --cache "$CACHE" --out "$RUNS/tv3/test5" --quiet
python - "$RUNS/tv3/test5/captions_test.json" "$EARLIER/tv3_captions_test.json" <<'PY' | tee -a "$HERE/tv3_rerun_check.txt"
import json, sys
a, b = (json.load(open(path)) for path in sys.argv[1:])
print(f"test captions of the re-run's float16 file against the committed ones: "
      f"{sum(a[k] == b[k] for k in b)} of {len(b)} identical")
PY
# tv4 alone (reported, not a candidate), and the candidate: the three float16 files together.
python -m rawcap.evaluate "$RUNS/tv4.h5" --split test $DECODING --cache "$CACHE" --out "$RUNS/tv4/test5" --quiet
python -m rawcap.evaluate rawcap/weights/flickr8k.h5 "$RUNS/tv3.h5" "$RUNS/tv4.h5" --split test $DECODING \
    --cache "$CACHE" --out "$RUNS/ensemble_test" --quiet
python -m rawcap.compare $EARLIER/shipped/captions_test.json "$RUNS/ensemble_test/captions_test.json" \
    --cache "$CACHE" > "$HERE/compare_ensemble_vs_tv2_test.txt"
cat "$HERE/compare_ensemble_vs_tv2_test.txt"
