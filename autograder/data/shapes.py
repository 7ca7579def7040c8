"""Seeded synthetic images of simple shapes (circles, squares, triangles, lines), pure numpy.

A small, download-free stand-in for MNIST-style data in the CNN assignment:
grey 1-channel images, one white outline per image on a dark noisy
background, at a random position and size. The classes differ in *shape*,
not in position or brightness, so a model has to learn local features
(curves, corners, straight strokes): a job for convolutions.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("círculo", "cuadrado", "triángulo", "línea")
"""Class ``k`` of :func:`make_shapes` is ``CLASSES[k]``."""


def _segment_distance(px, py, ax, ay, bx, by):
    """Distance from every pixel (px, py) to the segment from (ax, ay) to (bx, by)."""
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _polygon_distance(px, py, corners):
    """Distance from every pixel to the closed outline through ``corners`` (a list of (x, y))."""
    d = np.full(px.shape, np.inf)
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        d = np.minimum(d, _segment_distance(px, py, ax, ay, bx, by))
    return d


def _draw(kind: int, size: int, rng: np.random.Generator, px, py) -> np.ndarray:
    """The distance of every pixel to the outline of one random shape of class ``kind``."""
    r = rng.uniform(0.2, 0.4) * size  # "radius": half the extent of the shape
    margin = min(r + 1.5, (size - 1) / 2)  # inside the image (small images: centred, maybe cut)
    cx, cy = rng.uniform(margin, size - 1 - margin, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    if kind == 0:  # circle
        return np.abs(np.hypot(px - cx, py - cy) - r)
    if kind == 1:  # axis-aligned square
        h = r / np.sqrt(2.0)
        corners = [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
        return _polygon_distance(px, py, corners)
    if kind == 2:  # equilateral triangle, pointing up or down
        up = -np.pi / 2 if rng.random() < 0.5 else np.pi / 2
        corners = [(cx + r * np.cos(up + a), cy + r * np.sin(up + a)) for a in np.arange(3) * 2 * np.pi / 3]
        return _polygon_distance(px, py, corners)
    # a straight stroke through the centre, any direction
    dx, dy = r * np.cos(angle), r * np.sin(angle)
    return _segment_distance(px, py, cx - dx, cy - dy, cx + dx, cy + dy)


def make_shapes(n: int, size: int = 28, seed: int = 0, noise: float = 0.1):
    """``n`` images of random shapes, balanced over the 4 classes of :data:`CLASSES`.

    Each image is one white outline (stroke about 1.5 px wide, anti-aliased)
    of a circle, a square, a triangle or a line, at a random position, size
    and orientation, plus Gaussian noise of standard deviation ``noise``,
    clipped to ``[0, 1]``. Deterministic for a given ``seed``.

    Returns ``(X, y)``: ``X`` float32 of shape ``(n, 1, size, size)`` with
    values in ``[0, 1]``, ``y`` int64 of shape ``(n,)`` with labels 0..3.
    """
    if n < 0 or size < 8:
        raise ValueError(f"make_shapes: n debe ser >= 0 y size >= 8 (n={n}, size={size})")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    py, px = np.mgrid[0:size, 0:size].astype(np.float64)
    X = np.empty((n, 1, size, size), dtype=np.float32)
    for i, kind in enumerate(y):
        distance = _draw(int(kind), size, rng, px, py)
        stroke = np.clip(1.75 - distance, 0.0, 1.0)  # 1 within 0.75 px of the outline, fading to 0 a pixel further
        image = stroke * rng.uniform(0.7, 1.0) + noise * rng.standard_normal((size, size))
        X[i, 0] = np.clip(image, 0.0, 1.0)
    return X, y
