"""ONNX graphs over 2 GB: weights as external data, in shards (docs/MODEL_FORMAT.md, "External data").

A protobuf message cannot be serialised past 2 GB, so a graph with MPT-1B's 5 GB of float32
weights keeps them outside the .onnx file. They go to shards of at most `shard_bytes` each
(`lm.onnx.data-00`, `lm.onnx.data-01`, ...), so that the browser downloads, verifies and stores
one shard at a time, never a whole model file in one buffer; ONNX Runtime is handed the shards by
name (session option externalData) and reads each tensor at its offset.
"""
from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto
from onnx.external_data_helper import set_external_data

SHARD_BYTES = 500 * 2 ** 20  # one download, one IndexedDB entry, one buffer at a time
ALIGN = 64  # tensor offsets in a shard (ONNX Runtime reads any; aligned ones can be mapped as they are)
INLINE_BELOW = 1024  # small tensors (shapes, scalars) stay in the graph file


def initializer_bytes(model: onnx.ModelProto) -> int:
    """The weights' bytes (ModelProto.ByteSize() fails past 2 GB)."""
    return sum(len(t.raw_data) for t in model.graph.initializer)


def save_sharded(model: onnx.ModelProto, path, shard_bytes: int) -> list[Path]:
    """Writes `path` with every initializer of INLINE_BELOW bytes or more in shards next to it;
    returns the shards' paths (none when everything fits in one file under shard_bytes)."""
    path = Path(path)
    tensors = [t for t in model.graph.initializer if len(t.raw_data) >= INLINE_BELOW]
    if initializer_bytes(model) < min(shard_bytes, 2 ** 31 - 1) or not tensors:
        onnx.save(model, str(path))
        onnx.checker.check_model(str(path))
        return []
    shards: list[Path] = []
    out, size = None, 0
    try:
        for tensor in tensors:
            data = tensor.raw_data
            if out is None or (size > 0 and size + len(data) > shard_bytes):
                if out is not None:
                    out.close()
                shards.append(path.with_name(f"{path.name}.data-{len(shards):02d}"))
                out, size = open(shards[-1], "wb"), 0
            pad = -size % ALIGN
            out.write(b"\0" * pad)
            size += pad
            set_external_data(tensor, location=shards[-1].name, offset=size, length=len(data))
            tensor.data_location = TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
            out.write(data)
            size += len(data)
    finally:
        if out is not None:
            out.close()
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path))  # by path: the checker reads the shards too
    return shards
