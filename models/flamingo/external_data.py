"""ONNX graphs over 2 GB: weights as external data, in shards (docs/MODEL_FORMAT.md, "External data").

A protobuf message cannot be serialised past 2 GB, so a graph with MPT-1B's 5 GB of float32
weights keeps them outside the .onnx file. They go to shards of at most `shard_bytes` each
(`lm.onnx.data-00`, `lm.onnx.data-01`, ...), so that the browser downloads, verifies and stores
one shard at a time, never a whole model file in one buffer; ONNX Runtime is handed the shards by
name (session option externalData) and reads each tensor at its offset.

The converter streams: a ShardWriter is handed each weight as the graph builder makes it and
writes it to the current shard at once, so that the graph being built holds only names, shapes and
offsets, never a second copy of the weights. A graph whose weights all fit under the shard size
gets them back inline when it is saved: one file, as small models always had. Reading goes the same
way, one tensor at a time (read_array), for the quantised variants of a folder.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.external_data_helper import ExternalDataInfo
from onnx.mapping import NP_TYPE_TO_TENSOR_TYPE, TENSOR_TYPE_TO_NP_TYPE

SHARD_BYTES = 500 * 2 ** 20  # one download, one IndexedDB entry, one buffer at a time
ALIGN = 64  # tensor offsets in a shard (ONNX Runtime reads any; aligned ones can be mapped as they are)
INLINE_BELOW = 1024  # small tensors (shapes, scalars) stay in the graph file
PROTOBUF_LIMIT = 2 ** 31 - 1


def file_entry(path: Path) -> dict:
    """A manifest's entry for one file: name, size and sha256 (read in chunks: shards are 500 MB)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(2 ** 24):
            digest.update(chunk)
            size += len(chunk)
    return {"path": Path(path).name, "bytes": size, "sha256": digest.hexdigest()}


def is_external(tensor: TensorProto) -> bool:
    return tensor.data_location == TensorProto.EXTERNAL


def tensor_bytes(tensor: TensorProto) -> int:
    """A tensor's size from its type and shape: the same whether its data is inline or in a shard."""
    item = np.dtype(TENSOR_TYPE_TO_NP_TYPE[tensor.data_type]).itemsize
    return int(np.prod(tensor.dims, dtype=np.int64)) * item


def initializer_bytes(model: onnx.ModelProto) -> int:
    """The weights' bytes (ModelProto.ByteSize() fails past 2 GB)."""
    return sum(tensor_bytes(t) for t in model.graph.initializer)


def external_bytes(tensor: TensorProto, base_dir) -> bytes:
    info = ExternalDataInfo(tensor)
    with open(Path(base_dir) / info.location, "rb") as f:
        f.seek(info.offset)
        return f.read(info.length if info.length else tensor_bytes(tensor))


def read_array(tensor: TensorProto, base_dir=None) -> np.ndarray:
    """An initializer's value; an external one is read from its shard in `base_dir` (that tensor only)."""
    if not is_external(tensor):
        return numpy_helper.to_array(tensor)
    dtype = np.dtype(TENSOR_TYPE_TO_NP_TYPE[tensor.data_type])
    return np.frombuffer(external_bytes(tensor, base_dir), dtype).reshape(tuple(tensor.dims))


class Inline:
    """Tensors kept in the graph (raw_data): for a graph that is checked and saved whole."""

    def tensor(self, array: np.ndarray, name: str) -> TensorProto:
        return numpy_helper.from_array(np.asarray(array), name)


class ShardWriter:
    """The initializers of the graph file `path`: each one of INLINE_BELOW bytes or more is written
    to the current shard as it is made (`path.data-00`, `-01`, ... of at most `shard_bytes`, a
    larger tensor in a shard of its own), and the TensorProto returned points at it."""

    def __init__(self, path, shard_bytes: int = SHARD_BYTES):
        self.path, self.shard_bytes = Path(path), shard_bytes
        self.shards: list[Path] = []
        self._out, self._size = None, 0

    def tensor(self, array: np.ndarray, name: str) -> TensorProto:
        array = np.asarray(array)
        if array.nbytes < INLINE_BELOW:
            return numpy_helper.from_array(array, name)
        tensor = TensorProto(name=name, data_type=NP_TYPE_TO_TENSOR_TYPE[array.dtype], dims=array.shape)
        self._write(tensor, np.ascontiguousarray(array).data)
        return tensor

    def adopt(self, model: onnx.ModelProto, base_dir=None) -> None:
        """Moves into this graph's shards what is not there yet: a loaded graph's large raw_data (one
        traced by torch.onnx.export) and tensors still in another graph's shards (in `base_dir`)."""
        for tensor in model.graph.initializer:
            if is_external(tensor):
                if ExternalDataInfo(tensor).location in {shard.name for shard in self.shards}:
                    continue
                data = external_bytes(tensor, base_dir)
            elif len(tensor.raw_data) >= INLINE_BELOW:
                data = tensor.raw_data
                tensor.ClearField("raw_data")
            else:
                continue
            self._write(tensor, data)

    def save(self, model: onnx.ModelProto) -> list[Path]:
        """Writes the graph file and checks it (by path: the checker reads the shards too); returns
        the shards, none when the weights come under min(shard_bytes, 2 GB): then they are inline."""
        self._close()
        if self.shards and initializer_bytes(model) < min(self.shard_bytes, PROTOBUF_LIMIT):
            self._inline(model)
        onnx.save(model, str(self.path))
        onnx.checker.check_model(str(self.path))
        return list(self.shards)

    def discard(self) -> None:
        """Deletes the shards written so far (a graph that is not saved after all)."""
        self._close()
        for shard in self.shards:
            shard.unlink()
        self.shards = []

    def _write(self, tensor: TensorProto, data) -> None:
        n = len(data) if isinstance(data, bytes) else data.nbytes
        if self._out is None or (self._size > 0 and self._size + n > self.shard_bytes):
            self._close()
            self.shards.append(self.path.with_name(f"{self.path.name}.data-{len(self.shards):02d}"))
            self._out, self._size = open(self.shards[-1], "wb"), 0
        pad = -self._size % ALIGN
        self._out.write(b"\0" * pad)
        self._size += pad
        del tensor.external_data[:]  # onnx's set_external_data wants raw_data, which a streamed tensor never has
        for key, value in (("location", self.shards[-1].name), ("offset", str(self._size)), ("length", str(n))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        tensor.data_location = TensorProto.EXTERNAL
        self._out.write(data)
        self._size += n

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def _inline(self, model: onnx.ModelProto) -> None:
        for tensor in model.graph.initializer:
            if is_external(tensor):
                data = external_bytes(tensor, self.path.parent)
                del tensor.external_data[:]
                tensor.ClearField("data_location")
                tensor.raw_data = data
        self.discard()


def save_sharded(model: onnx.ModelProto, path, shard_bytes: int) -> list[Path]:
    """Writes a graph held in memory with every initializer of INLINE_BELOW bytes or more in shards
    next to it; returns the shards' paths (none when everything fits in one file under shard_bytes)."""
    writer = ShardWriter(path, shard_bytes)
    writer.adopt(model)
    return writer.save(model)
