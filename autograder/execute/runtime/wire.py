"""The wire format between the grader and the sandboxed student process.

Plain data only, never pickle: a frame is an 8-byte length, then a JSON header
and the raw bytes of the arrays it names. Both sides use this module; the
sandbox gets a read-only copy of this folder, so it may import only the
standard library and numpy.

``decode`` runs in the trusted process on bytes the student's process wrote,
so it trusts nothing: it accepts a short list of dtypes, checks every shape
against the bytes present, limits depth and size, and raises ``WireError`` on
anything else.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_FRAME_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 64
_LEN = struct.Struct(">Q")
_HDR = struct.Struct(">I")
ALLOWED_DTYPES = {
    "|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8",
}


class WireError(ValueError):
    """Bytes that are not a valid message (a broken or hostile peer)."""


class Unsupported:
    """Stands for a value that has no wire form (e.g. an arbitrary object)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<no se puede enviar: {self.type_name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unsupported) and other.type_name == self.type_name

    def __hash__(self) -> int:
        return hash(self.type_name)


def _to_array(value: Any) -> np.ndarray | None:
    """A plain ndarray for array-likes we know (numpy, torch), else None."""
    if isinstance(value, np.ndarray):
        # np.array(..., subok=False) drops subclasses that could lie about their values
        return np.array(value, copy=True, subok=False)
    torch = _loaded_torch()
    if torch is not None and isinstance(value, torch.Tensor):
        if value.layout != torch.strided:  # a sparse gradient (nn.Embedding(sparse=True)) travels dense
            if value.numel() * value.element_size() > MAX_FRAME_BYTES:
                raise WireError(f"tensor disperso demasiado grande para enviarlo denso ({tuple(value.shape)})")
            value = value.detach().to_dense()
        return value.detach().to("cpu").resolve_conj().resolve_neg().numpy().copy()
    if isinstance(value, np.generic):
        return np.asarray(value)
    return None


def _loaded_torch() -> Any:
    import sys

    return sys.modules.get("torch")


def encode(value: Any, *, hook: Callable[[Any], Any] | None = None) -> bytes:
    """Encode ``value`` as one frame. ``hook`` may turn special objects into plain data first."""
    buffers: list[bytes] = []
    offset = [0]

    def walk(v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("estructura demasiado profunda")
        if hook is not None:
            v = hook(v)
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return v if abs(v) < 2**63 else {"__bigint__": str(v)}
        if isinstance(v, float):
            return v if math.isfinite(v) else {"__float__": repr(v)}
        if isinstance(v, Unsupported):
            return {"__unsupported__": v.type_name}
        arr = _to_array(v)
        if arr is not None:
            if arr.dtype.byteorder == ">":
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            code = arr.dtype.str
            if code not in ALLOWED_DTYPES:
                return {"__unsupported__": f"ndarray[{arr.dtype}]"}
            if offset[0] + arr.nbytes > MAX_FRAME_BYTES:  # refuse before copying hundreds of MB
                raise WireError(f"mensaje demasiado grande (más de {MAX_FRAME_BYTES} bytes en arrays)")
            data = np.ascontiguousarray(arr).tobytes()
            node = {"__nd__": [code, list(arr.shape), offset[0], len(data)]}
            buffers.append(data)
            offset[0] += len(data)
            return node
        if isinstance(v, tuple):
            return {"__tuple__": [walk(x, depth + 1) for x in v]}
        if isinstance(v, list):
            return [walk(x, depth + 1) for x in v]
        if isinstance(v, dict):
            items = []
            for k, x in v.items():
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    k = repr(k)
                items.append([k, walk(x, depth + 1)])
            return {"__dict__": items}
        return {"__unsupported__": type(v).__name__}

    header = json.dumps(walk(value, 0), allow_nan=False).encode()
    body = _HDR.pack(len(header)) + header + b"".join(buffers)
    if len(body) > MAX_FRAME_BYTES:
        raise WireError(f"mensaje demasiado grande ({len(body)} bytes, máximo {MAX_FRAME_BYTES})")
    return _LEN.pack(len(body)) + body


def decode_body(body: bytes, *, hook: Callable[[dict], Any] | None = None) -> Any:
    """Decode a frame body (without its length prefix), trusting nothing in it."""
    if len(body) < _HDR.size:
        raise WireError("mensaje truncado")
    (hlen,) = _HDR.unpack_from(body)
    if hlen > len(body) - _HDR.size:
        raise WireError("cabecera truncada")
    try:
        tree = json.loads(body[_HDR.size : _HDR.size + hlen])
    except (ValueError, RecursionError) as exc:
        raise WireError(f"cabecera JSON inválida: {exc}") from None
    blob = memoryview(body)[_HDR.size + hlen :]

    def walk(node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("estructura demasiado profunda")
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [walk(x, depth + 1) for x in node]
        if not isinstance(node, dict) or len(node) != 1:
            if isinstance(node, dict) and hook is not None:
                return hook(node)
            raise WireError("nodo desconocido")
        ((tag, payload),) = node.items()
        if tag == "__nd__":
            return _array(payload, blob)
        if tag == "__tuple__" and isinstance(payload, list):
            return tuple(walk(x, depth + 1) for x in payload)
        if tag == "__dict__" and isinstance(payload, list):
            out = {}
            for item in payload:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))):
                    raise WireError("entrada de diccionario inválida")
                out[item[0]] = walk(item[1], depth + 1)
            return out
        if tag == "__float__" and payload in ("nan", "inf", "-inf"):
            return float(payload)
        if tag == "__bigint__" and isinstance(payload, str) and len(payload) < 400:
            return int(payload)
        if tag == "__unsupported__" and isinstance(payload, str):
            return Unsupported(payload[:200])
        if hook is not None:
            return hook(node)
        raise WireError(f"etiqueta desconocida {tag[:40]!r}")

    return walk(tree, 0)


def _array(payload: Any, blob: memoryview) -> np.ndarray:
    if not (isinstance(payload, list) and len(payload) == 4):
        raise WireError("descriptor de array inválido")
    code, shape, start, size = payload
    if code not in ALLOWED_DTYPES:
        raise WireError(f"dtype no permitido {str(code)[:20]!r}")
    if not (isinstance(shape, list) and len(shape) <= 32 and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise WireError("forma inválida")
    if not (isinstance(start, int) and isinstance(size, int) and 0 <= start and 0 <= size):
        raise WireError("rango de bytes inválido")
    dtype = np.dtype(code)
    count = math.prod(shape)
    if count * dtype.itemsize != size or start + size > len(blob):
        raise WireError("el tamaño del array no coincide con sus bytes")
    return np.frombuffer(blob[start : start + size], dtype=dtype).reshape(shape).copy()


def decode(frame: bytes, **kwargs: Any) -> Any:
    """Decode a whole frame (length prefix included)."""
    if len(frame) < _LEN.size:
        raise WireError("mensaje truncado")
    (n,) = _LEN.unpack_from(frame)
    if n != len(frame) - _LEN.size:
        raise WireError("longitud de mensaje incorrecta")
    return decode_body(frame[_LEN.size :], **kwargs)


def write_frame(fd: int, frame: bytes) -> None:
    view = memoryview(frame)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exact(fd: int, n: int) -> bytes:
    """Blocking read of exactly ``n`` bytes (the sandbox side; the grader reads with deadlines)."""
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("el otro extremo cerró el canal")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame_body(fd: int) -> bytes:
    (n,) = _LEN.unpack(read_exact(fd, _LEN.size))
    if n > MAX_FRAME_BYTES:
        raise WireError("mensaje demasiado grande")
    return read_exact(fd, n)
