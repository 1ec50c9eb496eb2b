#!/usr/bin/env bash
# System packages the tests need, all from Debian (PyPI is not used): Chromium for the browser
# tests (WebGPU on SwiftShader), PyTorch + ONNX for models/, matplotlib for the model card plot, OpenBLAS (without it Debian's torch
# falls back to the reference BLAS and trains ~14x slower), cairosvg for rendering EmojiWorld.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  chromium python3-torch python3-onnx python3-numpy python3-pil python3-pytest python3-cairosvg python3-matplotlib \
  libopenblas0-pthread >/dev/null
echo "system packages ready: $(/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)'), $(chromium --version 2>/dev/null || echo 'chromium missing')"
