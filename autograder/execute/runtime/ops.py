"""Runtime operations that probes may call, besides the student's own functions.

A probe step whose function starts with ``@`` runs one of these (e.g.
``Call("x", "@tensor", (array,), {"requires_grad": True})``). They let a
data-only probe build tensors on the grading device, load the reference's
weights into the student's module by parameter name, run backward and read
every gradient: the module probes of the PyTorch assignments. This is our
code, not the student's, but it runs in the sandbox: it decides nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEVICE = "cpu"  # set by the runner from the grader's --device

OPS: dict[str, Callable[..., Any]] = {}


class ProbeError(Exception):
    """The student's object does not fit the API (the message says how)."""


def op(fn: Callable[..., Any]) -> Callable[..., Any]:
    OPS[fn.__name__.rstrip("_")] = fn
    return fn


def _torch() -> Any:
    import torch

    return torch


def _dtype(name: str | None) -> Any:
    return None if name is None else getattr(_torch(), name)


@op
def device() -> str:
    """The grading device ("cpu" or "cuda")."""
    return DEVICE


@op
def tensor(array: Any, requires_grad: bool = False, dtype: str | None = None) -> Any:
    """A tensor on the grading device from an array (float64 stays float64 unless ``dtype``)."""
    torch = _torch()
    t = torch.as_tensor(array).to(DEVICE)
    if dtype is not None:
        t = t.to(_dtype(dtype))
    return t.requires_grad_(requires_grad) if requires_grad else t


@op
def to(obj: Any, dtype: str | None = None, device: bool = True) -> Any:
    """``obj.to(grading device, dtype)`` for a module or tensor."""
    if device:
        obj = obj.to(DEVICE)
    return obj.to(_dtype(dtype)) if dtype is not None else obj


@op
def call(obj: Any, *args: Any, **kwargs: Any) -> Any:
    return obj(*args, **kwargs)


@op
def method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(obj, name)(*args, **kwargs)


@op
def getattr_(obj: Any, name: str) -> Any:
    return getattr(obj, name)


@op
def list_(iterable: Any, limit: int = 10_000) -> list[Any]:
    """The first ``limit`` items of an iterable (a generator the student wrote), as a list.

    The limit keeps an endless generator from hanging the probe: its answer simply has too many items.
    """
    out = []
    for item in iterable:
        if len(out) >= limit:
            break
        out.append(item)
    return out


@op
def load_state_dict(module: Any, state: dict[str, Any], dtype: str | None = "float64") -> Any:
    """Load ``state`` (name -> array) into ``module`` by parameter name; explain any mismatch."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ProbeError(f"se esperaba un nn.Module, se obtuvo {type(module).__name__}")
    own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    want = {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}
    if own != want:
        missing = [f"{k} {want[k]}" for k in want if k not in own]
        extra = [f"{k} {own[k]}" for k in own if k not in want]
        shape = [f"{k}: {own[k]} en lugar de {want[k]}" for k in want if k in own and own[k] != want[k]]
        parts = []
        if missing:
            parts.append("faltan parámetros: " + ", ".join(missing))
        if extra:
            parts.append("sobran: " + ", ".join(extra))
        if shape:
            parts.append("formas distintas: " + "; ".join(shape))
        raise ProbeError("los nombres o formas de los parámetros no coinciden con los prescritos: " + "; ".join(parts)
                         + ". Esperados: " + ", ".join(f"{k} {v}" for k, v in want.items()))
    if dtype is not None:
        module.to(_dtype(dtype))
    module.to(DEVICE)
    with torch.no_grad():
        module.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    return module


@op
def backward(output: Any, grad: Any = None) -> None:
    """``output.backward(grad)``; ``grad`` defaults to ones (for a scalar, 1)."""
    torch = _torch()
    if not isinstance(output, torch.Tensor):
        raise ProbeError(f"se esperaba un tensor para backward, se obtuvo {type(output).__name__}")
    if not output.requires_grad:
        raise ProbeError("la salida no depende de los parámetros en el grafo de autograd (¿detach, .data o no_grad?)")
    g = None if grad is None else torch.as_tensor(grad, dtype=output.dtype, device=output.device)
    output.backward(g)


@op
def grad(t: Any) -> Any:
    return t.grad


@op
def param_grads(module: Any) -> dict[str, Any]:
    """Every parameter's gradient by name (None where it got none)."""
    return {name: p.grad for name, p in module.named_parameters()}


@op
def state_dict(module: Any) -> dict[str, Any]:
    return {k: v.detach() for k, v in module.state_dict().items()}


@op
def zero_grad(module: Any) -> None:
    for p in module.parameters():
        p.grad = None


@op
def manual_seed(seed: int) -> None:
    _torch().manual_seed(int(seed))


@op
def loader(X: Any, y: Any, batch_size: int = 32, shuffle: bool = False) -> Any:
    """A DataLoader over ``(X, y)`` (tensors on the CPU, as a student's loader would be)."""
    torch = _torch()
    dataset = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


@op
def sgd(module: Any, lr: float, momentum: float = 0.0) -> Any:
    return _torch().optim.SGD(module.parameters(), lr=lr, momentum=momentum)


@op
def cross_entropy_loss() -> Any:
    return _torch().nn.CrossEntropyLoss()


@op
def dtype(obj: Any) -> str:
    """The dtype of a tensor or array as text ("torch.bool", "float32"), or its type's name."""
    return str(getattr(obj, "dtype", type(obj).__name__))


@op
def item(t: Any) -> float:
    return float(t.item() if hasattr(t, "item") else t)


@op
def mode(module: Any) -> bool:
    """Whether the module is in training mode (after the student's function ran)."""
    return bool(module.training)
