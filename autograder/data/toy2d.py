"""Seeded 2-D toy classification problems, pure numpy.

Both generators are deterministic for a given ``seed`` (``np.random.default_rng``)
and return ``X`` as float64 of shape ``(N, 2)`` and ``y`` as int64 of shape ``(N,)``.
"""

from __future__ import annotations

import numpy as np


def make_spirals(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    """Interleaved spiral arms, one per class (the CS231n toy problem).

    Class ``k`` is the arm ``r * (sin t, cos t)`` with the radius ``r`` going
    evenly from 0 to 1 and the angle ``t`` from ``4k`` to ``4(k + 1)`` radians,
    plus Gaussian noise of standard deviation ``noise`` on the angle. Not
    linearly separable; a small MLP fits it.

    Returns ``(X, y)``: ``X`` float64 ``(n_per_class * n_classes, 2)``, ``y``
    int64 labels in ``0 .. n_classes - 1``, grouped by class.
    """
    rng = np.random.default_rng(seed)
    N = n_per_class * n_classes
    X = np.empty((N, 2), dtype=np.float64)
    y = np.empty(N, dtype=np.int64)
    for k in range(n_classes):
        sl = slice(k * n_per_class, (k + 1) * n_per_class)
        r = np.linspace(0.0, 1.0, n_per_class)
        t = np.linspace(4.0 * k, 4.0 * (k + 1), n_per_class) + noise * rng.standard_normal(n_per_class)
        X[sl, 0] = r * np.sin(t)
        X[sl, 1] = r * np.cos(t)
        y[sl] = k
    return X, y


def make_moons(n=200, noise=0.1, seed=0):
    """Two interleaving half circles (like scikit-learn's ``make_moons``).

    Class 0 is the upper half circle of radius 1 centred at (0, 0); class 1 the
    lower one centred at (1, 0.5). ``n // 2`` points go to class 0 and the rest
    to class 1, Gaussian noise of standard deviation ``noise`` is added to both
    coordinates, and the points are shuffled.

    Returns ``(X, y)``: ``X`` float64 ``(n, 2)``, ``y`` int64 labels in ``{0, 1}``.
    """
    rng = np.random.default_rng(seed)
    n0 = n // 2
    n1 = n - n0
    t0 = np.linspace(0.0, np.pi, n0)
    t1 = np.linspace(0.0, np.pi, n1)
    X = np.concatenate(
        [
            np.stack([np.cos(t0), np.sin(t0)], axis=1),
            np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1),
        ]
    )
    y = np.concatenate([np.zeros(n0, dtype=np.int64), np.ones(n1, dtype=np.int64)])
    X += noise * rng.standard_normal(X.shape)
    perm = rng.permutation(n)
    return X[perm].astype(np.float64), y[perm]
