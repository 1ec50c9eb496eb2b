#!/usr/bin/env bash
# Model v2 (issue 18), the shipped model: each stage continues model v1's on what v2 adds, so that two CPU
# cores get there in hours instead of a day.
#   stage 1: the encoder on all seven training styles (load_world(styles='v2'), EMOJIWORLD.md);
#   stage 2: the language model on 640-token sequences with long binding episodes (32-shot prompts);
#   stage 3: the bridge on both, starting from v1's bridge, on pages of up to 32 images;
#   stage 3s: stage 3's bridge continued with half the pages short again (at most 8 images; shipped until 0.2.2);
#   stage 1d: stage 1's encoder distilled to see ink outlines as clean drawings (the shipped encoder since 0.2.2);
#   stage 3d: stage 3s's bridge continued on stage 1d's encoder, then mixed half and half with 3s's (the shipped
#            bridge since 0.2.3);
#   export:  the model folder from checkpoints/v2/ (the committed stages) and its CLI evaluation.
#
#   cd models && bash train/v2.sh            # every stage resumes from its last checkpoint when run again
#   STAGE=3 bash train/v2.sh                 # one stage only (1, 1d, 2, 3, 3s, 3d, stages = all of them, export)
#   STAGE=1wide bash train/v2.sh; STAGE=3wide ...  # the candidate after 0.2.1, by name only (below)
#   STAGE=1ni bash train/v2.sh               # session 12's candidate encoder (IBN-a + ink), by name only
#   STAGE=1nic bash train/v2.sh              # that encoder trained on; by name only
#   STAGE=3ni bash train/v2.sh; STAGE=3nic ...  # then a bridge on it (as 3wide), continued; by name only
#   STAGE=3niv1 bash train/v2.sh; STAGE=3niv1s ...  # stages 3 and 3s on that encoder; by name only
#   STAGE=stitch bash train/v2.sh; STAGE=3stc ...  # that encoder mapped into the shipped one's space; by name only
#   STAGE=1sni bash train/v2.sh; STAGE=3sni ...  # the shipped encoder continued with IBN-a + ink, then a bridge; by name only
#   STAGE=1dink bash train/v2.sh              # stage 1d as it was run, from the committed stage 1 (checkpoints/v2/vision.pt)
#   STAGE=1dink2 bash train/v2.sh             # that run resumed to twice its steps; by name only
#   STAGE=1dinkr / 1dinkb bash train/v2.sh    # stage 1dink with ink on recoloured drawings / in bolder lines; by name only
#   STAGE=1dni / 1dni1 bash train/v2.sh       # stage 1dink with IBN-a in the student's first two stages / first one; by name only
#   STAGE=1anc bash train/v2.sh               # the shipped encoder trained on contrastively, anchored to itself; by name only
#   STAGE=3nin bash train/v2.sh               # 3nic with naming weighted up (caption pairs 1 x 128); by name only
#   STAGE=3sd bash train/v2.sh                # stage 3d as it was run, from the committed stages (0.2.2's)
#   PROFILE=smoke bash train/v2.sh           # a few steps per stage: checks the pipeline
#
# v1's stages come from models/checkpoints/ unless V1_VISION, V1_LM, V1_BRIDGE (a bridge as tools/bridge_of.py
# writes it) and TOKENIZER say otherwise: reproduce.sh hands over its own v1 run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
RUNS=${RUNS:-runs/v2}
STAGE=${STAGE:-all}
V1_VISION=${V1_VISION:-checkpoints/vision.pt}
V1_LM=${V1_LM:-checkpoints/lm.pt}
V1_BRIDGE=${V1_BRIDGE:-checkpoints/bridge.pt}
tok="--tokenizer=${TOKENIZER:-../public/models/emojiworld/tokenizer.json}"  # v1's tokenizer: the text side is unchanged
case "${PROFILE:-full}" in
  full)
    lm="--batch=16 --steps=300 --eval_every=100 --ckpt_every=50"
    vision_steps="500 2000" vision="--batch=256 --eval_every=500 --ckpt_every=50"
    stage3="--steps=500 --clip_batch=32 --eval_every=250 --ckpt_every=25"
    stage3s="--steps=250 --clip_batch=32 --eval_every=250 --ckpt_every=25"
    vision_wide_steps=3000 vision_wide="--batch=256 --eval_every=600 --ckpt_every=100"
    stage3wide="--steps=750 --clip_batch=32 --eval_every=250 --ckpt_every=25"
    vision_ni_steps=3000 vision_nic_steps=2500 vision_sni_steps=2000 vision_dink_steps=1000 ;;
  smoke)
    lm="--batch=2 --steps=2 --warmup=1 --eval_every=2 --eval_episodes=4"
    vision_steps="2" vision="--batch=16 --eval_every=2"
    stage3="--steps=2 --page_batch=2 --pair_batch=2 --clip_batch=1 --eval_every=2 --eval_episodes=4 --match_heads=1.0,3.0"
    stage3s="$stage3" vision_wide_steps=2 vision_wide="$vision" stage3wide="$stage3" vision_ni_steps=2 vision_nic_steps=2 vision_sni_steps=2 vision_dink_steps=2 ;;
  *) echo "PROFILE must be full or smoke" >&2; exit 2 ;;
esac
in_stage() { for s in "$@"; do [ "$STAGE" = "$s" ] && return 0; done; return 1; }
# glibc hands the pages of large tensors back to the kernel after every op; jemalloc that never does made a stage 2
# step at 640 tokens 8x faster on two cores (one run, nothing else running). Debian: apt-get install libjemalloc2.
jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
if [ -f "$jemalloc" ]; then export LD_PRELOAD=$jemalloc MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1; fi
mkdir -p "$RUNS"
distil() {  # TEACHER OUT KINDS STEPS [train.vision flags]: stage 1dink's distillation (ink on 75 % of the images)
  local teacher=$1 out=$2 kinds=$3 steps=$4; shift 4
  $PY -m train.vision $tok --world=v2 --teacher="$teacher" "$@" --out="$RUNS/$out" --restyle=0.75 \
    --restyle_kinds=$kinds --steps=$steps --lr=5e-4 --seed=3 $vision
}

if in_stage all stages 2; then
  # checkpoints/v2/lm.pt is this run's best.pt, step 200 (the run was stopped at 220; TRAINING_LOG_v2.md)
  $PY -m train.lm $tok --init="$V1_LM" --out="$RUNS/lm" --seq_len=640 --lr=3e-4 --min_lr=3e-5 --warmup=100 \
    --long_fraction=0.35 $lm
fi
if in_stage all stages 1; then
  # 500 steps, then the same run resumed to 2,000 (its cosine restarted at 0.85 of the peak): what checkpoints/v2 holds
  for steps in $vision_steps; do
    $PY -m train.vision $tok --world=v2 --init="$V1_VISION" --out="$RUNS/vision" --steps=$steps --lr=1e-3 $vision
  done
fi
if in_stage all stages 1d 1dink; then
  # the shipped encoder since 0.2.2 (TRAINING_LOG_v2.md, "Stage 1dink"): a copy of stage 1's encoder trained to give
  # stage 1's features of clean images for the same images with ink outlines, so that the bridge, trained on stage 1's
  # encoder, still reads it. STAGE=1dink is the run as made: checkpoints/v2/vision.pt the teacher, its last.pt
  # without the optimiser is checkpoints/v2/vision-ink.pt.
  teacher=$([ "$STAGE" = 1dink ] && echo checkpoints/v2/vision.pt || echo "$RUNS/vision/last.pt")
  distil "$teacher" vision-dink ink $vision_dink_steps
fi
# 3p's recipe (reproduce.sh) on the v2 stages; stage 3s adds pages as short as few-shot prompts back
recipe_on() {  # the vision and language-model checkpoints the bridge is trained on
  echo "--world=v2 --vision=$1 --lm=$2 --clip_questions=balanced --clip_weight=1
  --novel_name_share=1 --coined_word_share=0.5 --other_name_share=0.5 --max_images=32 --max_way=10 --seq_len=640
  --restyle_share=0.5 --similar_share=0.5 --ema=0.99 --match_weight=1"
}
short="--short_page_share=0.5 --short_max_images=8"  # stage 3s: half the pages at most 8 images
bridge_stage() {  # VISION LM INIT RUN BRIDGE [train.flamingo flags]: one bridge run, then its bridge as $RUNS/BRIDGE
  local vision=$1 lm=$2 init=$3 run=$4 bridge=$5; shift 5
  $PY -m train.flamingo $tok $(recipe_on "$vision" "$lm") --init="$init" --out="$RUNS/$run" "$@"
  $PY tools/bridge_of.py "$RUNS/$run/final.pt" "$RUNS/$bridge"
}
if in_stage all stages 3; then
  # pages as long as 32-shot prompts. The run stopped at step 264 (--max_minutes=45), was resumed with the same
  # command and stopped by hand after step 500 (TRAINING_LOG_v2.md): --steps=500 ends where that bridge stood
  # (model 0.2.0's, in git history: checkpoints/README.md).
  bridge_stage "$RUNS/vision/last.pt" "$RUNS/lm/best.pt" "$V1_BRIDGE" flamingo bridge-long.pt --lr=5e-4 --seed=7 $stage3
fi
if in_stage all stages 3s; then
  # half the pages at most 8 images, the other half up to 32: checkpoints/v2/bridge.pt (model 0.2.1)
  bridge_stage "$RUNS/vision/last.pt" "$RUNS/lm/best.pt" "$RUNS/bridge-long.pt" flamingo-short bridge.pt --lr=3e-4 \
    --seed=11 $short $stage3s
fi
# The candidate after 0.2.1 (TRAINING_LOG_v2.md, "Stage 1 wide"), not part of `all` or `stages`: a wider encoder from
# scratch on the seven styles (1wide; its last.pt is checkpoints/v2-wide/vision.pt), then v2's committed bridge
# continued on that encoder and v2's committed LM with stage 3s's settings (3wide).
if in_stage 1wide; then
  $PY -m train.vision $tok --world=v2 --out="$RUNS/vision-wide" --vision_channels=48,96,192,128 --steps=$vision_wide_steps \
    --lr=2e-3 $vision_wide
fi
if in_stage 3wide; then
  bridge_stage checkpoints/v2-wide/vision.pt checkpoints/v2/lm.pt checkpoints/v2/bridge.pt flamingo-wide bridge-wide.pt \
    --lr=3e-4 --seed=13 $short $stage3wide
fi
# The candidate after session 12's trials (style-transfer/README.md, "Session 12"): IBN-a stages and ink outlines, both
# passed its rule with streamline-emojis left out; from scratch on the seven styles, wide's budget, so that the two
# compare like for like on OpenMoji (probes.vision); its last.pt without the optimiser is checkpoints/v2-ni/vision.pt.
# Then 3ni: v2's committed bridge continued on that encoder, as 3wide. By name only.
if in_stage 1ni; then
  $PY -m train.vision $tok --world=v2 --out="$RUNS/vision-ni" --vision_ibn=2 --restyle=0.3 --restyle_kinds=ink \
    --steps=$vision_ni_steps --lr=2e-3 $vision_wide
fi
if in_stage 1nic; then
  # that encoder trained on (TRAINING_LOG_v2.md, "Stage 1nic"): fresh heads and optimiser, the shipped continuation's lr
  $PY -m train.vision $tok --world=v2 --init=checkpoints/v2-ni/vision.pt --out="$RUNS/vision-nic" --vision_ibn=2 \
    --restyle=0.3 --restyle_kinds=ink --steps=$vision_nic_steps --lr=1e-3 --seed=1 $vision_wide
fi
if in_stage 3ni; then
  bridge_stage checkpoints/v2-ni/vision.pt checkpoints/v2/lm.pt checkpoints/v2/bridge.pt flamingo-ni bridge-ni.pt \
    --lr=3e-4 --seed=13 $short $stage3wide
fi
if in_stage 3nic; then
  # 3ni's bridge (checkpoints/v2-ni/bridge.pt, step 750, under the gate) continued 250 steps, a fresh optimiser
  bridge_stage checkpoints/v2-ni/vision.pt checkpoints/v2/lm.pt checkpoints/v2-ni/bridge.pt flamingo-nic bridge-nic.pt \
    --lr=3e-4 --seed=17 $short $stage3s
fi
# 3niv1 and 3niv1s (TRAINING_LOG_v2.md, "Stage 3niv1"): the shipped stages 3 and 3s with only the encoder swapped for
# checkpoints/v2-ni/vision.pt: v1's bridge, then its continuation with short pages. By name only.
if in_stage 3niv1; then
  bridge_stage checkpoints/v2-ni/vision.pt checkpoints/v2/lm.pt "$V1_BRIDGE" flamingo-niv1 bridge-niv1-long.pt \
    --lr=5e-4 --seed=7 $stage3
fi
if in_stage 3niv1s; then
  bridge_stage checkpoints/v2-ni/vision.pt checkpoints/v2/lm.pt "$RUNS/bridge-niv1-long.pt" flamingo-niv1-short \
    bridge-niv1.pt --lr=3e-4 --seed=11 $short $stage3s
fi
# stitch and 3stc (TRAINING_LOG_v2.md, "Stitching"): the ni encoder with a linear layer fitted to map its tokens into
# the shipped encoder's (train.stitch), read by the shipped bridge; then that bridge continued on it as 3nic. By name only.
if in_stage stitch; then
  $PY -m train.stitch --source=checkpoints/v2-ni/vision.pt --target=checkpoints/v2/vision.pt --out="$RUNS/vision-stitched.pt"
fi
if in_stage 3stc; then
  bridge_stage "$RUNS/vision-stitched.pt" checkpoints/v2/lm.pt checkpoints/v2/bridge.pt flamingo-stitch bridge-stitch.pt \
    --lr=3e-4 --seed=17 $short $stage3s --eval_every=125
fi
# 1dink2 (TRAINING_LOG_v2.md, "Stage 1dink2"): stage 1dink's run copied and resumed to twice its steps. By name only.
if in_stage 1dink2; then
  [ -d "$RUNS/vision-dink2" ] || cp -r "$RUNS/vision-dink" "$RUNS/vision-dink2"
  distil checkpoints/v2/vision.pt vision-dink2 ink $((2 * vision_dink_steps))
fi
# 1dinkr and 1dinkb (TRAINING_LOG_v2.md, "Stages 1dinkr and 1dinkb"): stage 1dink with, beside plain ink, ink on a
# recoloured drawing (1dinkr) or ink in bolder lines (1dinkb). By name only.
if in_stage 1dinkr 1dinkb; then
  kinds=$([ "$STAGE" = 1dinkr ] && echo ink,ink-recolour || echo ink,ink-bold)
  distil checkpoints/v2/vision.pt "vision-${STAGE#1}" $kinds $vision_dink_steps
fi
# 1dni and 1dni1 (TRAINING_LOG_v2.md, "Stage 1dni", "Stage 1dni1"): stage 1dink, but the student has IBN-a in its
# first two stages / its first one (the teacher's weights carried over; the teacher stays plain). By name only.
if in_stage 1dni 1dni1; then
  ibn=$([ "$STAGE" = 1dni ] && echo 2 || echo 1)
  distil checkpoints/v2/vision.pt "vision-${STAGE#1}" ink $vision_dink_steps --vision_ibn=$ibn
fi
# 1anc (TRAINING_LOG_v2.md, "Stage 1anc"): the shipped encoder trained on with the contrastive loss and ink outlines,
# plus an MSE holding its features of clean drawings at the start's (BatchNorm frozen). By name only.
if in_stage 1anc; then
  $PY -m train.vision $tok --world=v2 --init=checkpoints/v2/vision-ink.pt --anchor=10 --out="$RUNS/vision-anc" \
    --restyle=0.3 --restyle_kinds=ink --steps=$vision_dink_steps --lr=5e-4 --seed=4 $vision
fi
# 3d (TRAINING_LOG_v2.md, "Stage 3sd" and "Stage 3sdm"): stage 3s's bridge continued on stage 1d's encoder with 3s's
# settings, then mixed half and half with 3s's bridge: the shipped bridge since 0.2.3. STAGE=3sd is the run as made,
# from the committed checkpoints; its mix is checkpoints/v2/bridge-mix.pt.
if in_stage all stages 3d 3sd; then
  if [ "$STAGE" = 3sd ]; then vision_1d=checkpoints/v2/vision-ink.pt bridge_3s=checkpoints/v2/bridge.pt lm_2=checkpoints/v2/lm.pt
  else vision_1d="$RUNS/vision-dink/last.pt" bridge_3s="$RUNS/bridge.pt" lm_2="$RUNS/lm/best.pt"; fi
  bridge_stage "$vision_1d" "$lm_2" "$bridge_3s" flamingo-3sd bridge-3sd.pt --lr=3e-4 --seed=23 $short $stage3s
  $PY tools/bridge_mix.py "$bridge_3s" "$RUNS/bridge-3sd.pt" 0.5 "$RUNS/bridge-mix.pt"
fi
# 1sni and 3sni (TRAINING_LOG_v2.md, "Stage 1sni"): the shipped encoder continued with IBN-a and ink outlines (its
# BatchNorm rows carried into the IBN stages), then the shipped bridge continued on it as 3nic. By name only.
if in_stage 1sni; then
  $PY -m train.vision $tok --world=v2 --init=checkpoints/v2/vision.pt --out="$RUNS/vision-sni" --vision_ibn=2 \
    --restyle=0.3 --restyle_kinds=ink --steps=$vision_sni_steps --lr=1e-3 --seed=2 $vision
fi
if in_stage 3sni; then
  bridge_stage "$RUNS/vision-sni/last.pt" checkpoints/v2/lm.pt checkpoints/v2/bridge.pt flamingo-sni bridge-sni.pt \
    --lr=3e-4 --seed=19 $short $stage3s
fi
# 3nin (TRAINING_LOG_v2.md, "Stage 3nin"): 3nic's run with the caption pairs (an image and its name) weighted 1 instead
# of 0.2 and 128 a step instead of 32: is naming's plateau on the ni encoder the recipe's small share of it? By name only.
if in_stage 3nin; then
  bridge_stage checkpoints/v2-ni/vision.pt checkpoints/v2/lm.pt checkpoints/v2-ni/bridge.pt flamingo-nin bridge-nin.pt \
    --lr=3e-4 --seed=31 $short $stage3s --eval_every=125 --pair_batch=128 --pair_weight=1
fi
if in_stage all export; then
  # the shipped folder's graphs from the committed stages (BRIDGE= another bridge), then the CLI evaluation on the
  # committed episodes (OpenMoji, held-out concepts)
  $PY -m flamingo.export --bridge="${BRIDGE:-checkpoints/v2/bridge-mix.pt}" --vision=checkpoints/v2/vision-ink.pt \
    --lm=checkpoints/v2/lm.pt $tok --version=0.2.3 --out="$RUNS/export" --extra ../public/models/emojiworld/splits.json
  node ../bin/flamingo-web.mjs eval --model "$RUNS/export" --episodes eval/episodes/all.jsonl --out "$RUNS/report.json"
fi
