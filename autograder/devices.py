"""Choosing the device student code runs on (``--device cpu|cuda|auto``)."""

from __future__ import annotations

import importlib.util


def cuda_available() -> bool:
    """Whether torch is installed here and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda``; ``auto`` picks CUDA where available. Raise ValueError otherwise."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        if not cuda_available():
            raise ValueError("--device cuda: no hay GPU CUDA disponible (o torch no está instalado); usa --device cpu")
        return "cuda"
    raise ValueError(f"--device debe ser cpu, cuda o auto, no {device!r}")
