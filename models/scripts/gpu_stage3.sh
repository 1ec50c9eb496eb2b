#!/usr/bin/env bash
# Stage 3 on the lent GPU machine (16 cores, one H100). The data (drawing pages, pairs and clips)
# is made on the CPU by DataLoader workers and is the bottleneck: one training process, most cores
# as workers, and few torch threads per process. (A first try ran the main run and six ablations
# at once with 16 torch threads each: oversubscribed, it managed 0.4 steps/s.)
# Needs: EMOJIWORLD_SNAPSHOT, the sprite cache, runs/tokenizer.json, runs/vision/last.pt, runs/lm/best.pt.
# ABLATION="--tanh_gating=false" (etc.) runs one ablation instead of the main run.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
export TORCH_THREADS=2 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
name=${NAME:-flamingo}
python3 -m train.flamingo --device=cuda --max_minutes=${MINUTES:-7} --workers=${WORKERS:-13} \
  --steps=${STEPS:-6000} --page_batch=64 --pair_batch=128 --clip_batch=32 \
  --eval_every=500 --eval_episodes=200 --ckpt_every=500 --out=runs/$name ${ABLATION:-} > $OUT/$name.log 2>&1
cp runs/$name/final.pt $OUT/${name}_final.pt
cp runs/$name/eval.jsonl $OUT/${name}_eval.jsonl 2>/dev/null
tail -n 12 $OUT/$name.log
