"""Scripts the TypeScript side runs by path from the repository root (each puts models/ on sys.path):

    python3 models/tools/parity.py OUT_DIR                       # the parity test's PyTorch reference (src/engine/parity.test.ts)
    python3 models/tools/bench_pytorch.py --prompt_file FILE     # npm run bench: PyTorch eager
    python3 models/tools/export_lm_transformersjs.py --out DIR   # npm run bench: the LM for transformers.js
"""
