#!/usr/bin/env bash
# Reproduce the bundled model from nothing: data, the three training stages, export, evaluation.
#
#   cd models && bash reproduce.sh            # PROFILE=cpu (default): two cores, hours
#   PROFILE=gpu bash reproduce.sh             # the settings the shipped model was trained with
#
# Every stage resumes from its last checkpoint when run again. Stage 3 also runs under
# `torchrun --nproc_per_node=N` (DistributedDataParallel); see train_flamingo.py.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
PROFILE=${PROFILE:-cpu}
MODEL_DIR=${MODEL_DIR:-../public/models/emojiworld}

if [ "$PROFILE" = gpu ]; then
  dev="--device=cuda"
  vision="$dev --workers=6 --steps=6000 --batch=256"
  lm="$dev --workers=8 --steps=20000 --batch=64 --eval_every=500 --ckpt_every=500"
  stage3="$dev --workers=13 --steps=6000 --page_batch=64 --pair_batch=128 --clip_batch=32 --eval_every=500 --ckpt_every=500"
else
  # Fewer steps than the GPU run: enough to pass the same gates on two cores (see MODEL_CARD.md).
  vision="--steps=2500 --batch=128"
  lm="--steps=3000 --batch=48"
  stage3="--steps=3000"
fi

$PY -c "from emojiworld.concepts import load_world; load_world(0).save_splits('runs/splits.json')"
$PY train_tokenizer.py                       # stage 0: BPE on training text only
$PY train_vision.py $vision                  # stage 1: contrastive vision encoder, then frozen
$PY train_lm.py $lm                          # stage 2: LM on text alone, then frozen
# The gate before stage 3: text-only 5-way binding of held-out names must be solved (>= 0.95).
$PY - <<'PY'
import json
best = max(json.loads(l)["binding_5way_heldout"] for l in open("runs/lm/eval.jsonl"))
print(f"stage 2 gate: best 5-way held-out text binding {best:.3f}")
assert best >= 0.95, "in-context copying not solved yet: train the LM longer before stage 3"
PY
$PY train_flamingo.py $stage3                # stage 3: resampler + gated xattn-dense
$PY -m flamingo.export --checkpoint runs/flamingo/final.pt --tokenizer runs/tokenizer.json --out "$MODEL_DIR" \
  --extra runs/splits.json
# Evaluation goes through the exported graphs and the CLI (ONNX Runtime), on held-out data only.
[ -f eval/episodes/all.jsonl ] || $PY -m emojiworld.episodes --out eval/episodes --n 50
node ../bin/flamingo-web.mjs eval --model "$MODEL_DIR" --episodes eval/episodes/all.jsonl --out eval/report.json
$PY report.py eval/report.json --card "$MODEL_DIR/MODEL_CARD.md"
