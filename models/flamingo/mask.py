"""The per-image mask of Flamingo (the paper's phi), as integers, outside any graph.

OpenFlamingo computes it inside the model with a boolean cumsum, which ONNX Runtime rejects
(open_flamingo#256). Here it is one small function; src/engine/mask.ts is its TypeScript twin and
a parity test feeds both the same prompt.
"""
from __future__ import annotations

import torch


def media_index(input_ids: torch.Tensor, image_token_id: int) -> torch.Tensor:
    """For each token, the index of the last <image> at or before it; -1 before the first one.

    input_ids [b, s] int64 -> [b, s] int64. The <image> token itself already sees its image.
    """
    return torch.cumsum((input_ids == image_token_id).long(), dim=-1) - 1
