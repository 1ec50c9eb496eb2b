#!/usr/bin/env bash
# Stage 3 and its ablations on the lent GPU machine (16 cores, one H100), all at once: the main
# run with most data workers, then six short runs that compare at one smaller budget (a baseline
# and the five ablations of the paper's Table 3 that EMOJIWORLD.md asks for).
# Needs: EMOJIWORLD_SNAPSHOT, the sprite cache, runs/tokenizer.json, runs/vision/last.pt, runs/lm/best.pt.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
common="--device=cuda --max_minutes=${MINUTES:-8}"
python3 train_flamingo.py $common --workers=6 --steps=6000 --page_batch=64 --pair_batch=128 --clip_batch=32 \
  --eval_every=500 --ckpt_every=500 --out=runs/flamingo > $OUT/stage3.log 2>&1 &
small="$common --workers=1 --steps=1500 --page_batch=16 --pair_batch=32 --clip_batch=8 --eval_every=500 --ckpt_every=500"
python3 train_flamingo.py $small --out=runs/ablate/baseline > runs/ablate-baseline.log 2>&1 &
python3 train_flamingo.py $small --tanh_gating=false --out=runs/ablate/no-tanh > runs/ablate-no-tanh.log 2>&1 &
python3 train_flamingo.py $small --xattn_every=2 --out=runs/ablate/xattn-every-2 > runs/ablate-xattn2.log 2>&1 &
python3 train_flamingo.py $small --resampler=mlp --out=runs/ablate/mlp-resampler > runs/ablate-mlp.log 2>&1 &
python3 train_flamingo.py $small --unfreeze_lm=true --out=runs/ablate/unfrozen-lm > runs/ablate-unfrozen.log 2>&1 &
python3 train_flamingo.py $small --interleaved_weight=0 --page_batch=0 --out=runs/ablate/no-interleaved > runs/ablate-no-interleaved.log 2>&1 &
wait
cp runs/flamingo/final.pt $OUT/stage3_final.pt
cp runs/flamingo/eval.jsonl $OUT/stage3_eval.jsonl
# ablations: final weights (fp16 to fit the transfer limit) and their logs, in one archive
python3 - <<'PY'
import glob, torch
for path in glob.glob("runs/ablate/*/final.pt"):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    ck["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
    torch.save(ck, path.replace("final.pt", "final16.pt"))
PY
tar czf $OUT/ablations.tgz runs/ablate/*/final16.pt runs/ablate/*/eval.jsonl runs/ablate/*/log.jsonl runs/ablate-*.log
ls -la $OUT; tail -n 3 $OUT/stage3.log runs/ablate-*.log
