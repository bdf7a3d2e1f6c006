#!/bin/bash
# The plan's scoring, run from the repository root once both runs have finished:
#   docs/results/flickr8k-train-on-val/scripts/score_test.sh RUNS CACHE
# RUNS holds tv2/ and tv3/ (python -m rawcap.train ... --train-on-val --seed 2 / 3 --out RUNS/tvN);
# CACHE is the recipe's cache (python -m rawcap.data prepare --size 112 --resize squash).
set -euo pipefail
RUNS=$1; CACHE=$2; HERE=docs/results/flickr8k-train-on-val
DECODING="--beam 5 --length-penalty 0.5"
# The control for seed 3: its train-only float16 file, at the same decoding.
python -m rawcap.evaluate docs/results/flickr8k-ensemble3/members/seed3.h5 --split test $DECODING \
    --cache "$CACHE" --out "$RUNS/seed3_test" --quiet
for seed in 2 3; do
    run=$RUNS/tv$seed
    python -m rawcap.ship "$run/last.h5" --out "$RUNS/tv$seed.h5" $DECODING
    python -m rawcap.evaluate "$RUNS/tv$seed.h5" --split test $DECODING --cache "$CACHE" \
        --out "$run/test5" --quiet
done
python -m rawcap.compare docs/results/flickr8k/shipped/captions_test.json "$RUNS/tv2/test5/captions_test.json" \
    --cache "$CACHE" > "$HERE/compare_tv2_vs_shipped_test.txt"
python -m rawcap.compare "$RUNS/seed3_test/captions_test.json" "$RUNS/tv3/test5/captions_test.json" \
    --cache "$CACHE" > "$HERE/compare_tv3_vs_seed3_test.txt"
cat "$HERE"/compare_*_test.txt
