"""One-MatMul graphs at MPT-1B's shapes, float32 and q4 (MatMulNBits), for bench/graphs.ts: what a
single weight costs per call on each ONNX Runtime backend (docs/BENCHMARKS.md, "OpenFlamingo").

    /usr/bin/python3 models/tools/matmul_graphs.py OUT_DIR

x [1, seq, K] @ W [K, N] for the MLP's two weights and the tied output head (wte transposed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/: `import flamingo`
from flamingo.external_data import save_sharded  # noqa: E402
from flamingo.quantize import to_matmul_nbits  # noqa: E402

SHAPES = {"mlp_up": (2048, 8192), "mlp_down": (8192, 2048), "lm_head": (2048, 50280)}


def matmul_graph(K: int, N: int, seed: int = 0) -> onnx.ModelProto:
    w = np.random.default_rng(seed).normal(0, K ** -0.5, (K, N)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", N])],
        initializer=[numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for name, (K, N) in SHAPES.items():
        model = matmul_graph(K, N)
        save_sharded(model, out / f"{name}.onnx", 2 ** 30)
        save_sharded(to_matmul_nbits(model)[0], out / f"{name}.q4.onnx", 2 ** 30)


if __name__ == "__main__":
    main()
