"""scikit-learn's bundled handwritten digits (8x8, 1797 images, BSD licence), split and scaled.

No download: the data ship inside scikit-learn (``sklearn/datasets/data/
digits.csv.gz``). They are read straight from that file, which is the same
data as ``sklearn.datasets.load_digits()`` without importing scikit-learn and
SciPy (seconds saved in every sandboxed process); where the file is not
there, ``load_digits()`` itself is used.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

N_FEATURES = 64  # 8 x 8 pixels, flattened row by row
N_CLASSES = 10
MAX_PIXEL = 16.0  # pixel values are integers 0..16


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: ``X`` float64 (1797, 64) with values 0..16, ``y`` int64 (1797,) in 0..9."""
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = os.path.join(locations[0], "datasets", "data", "digits.csv.gz") if locations else ""
    if path and os.path.isfile(path):
        data = np.loadtxt(path, delimiter=",", dtype=np.float64)
        return data[:, :-1], data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def load_digits_split(test_size=0.2, seed=0):
    """Digits as torch tensors, split at random (seeded) into train and test.

    Returns ``(X_train, X_test, y_train, y_test)``: ``X_*`` float32 of shape
    ``(n, 64)`` scaled to [0, 1] (divided by 16), ``y_*`` int64 labels 0..9.
    The split is a permutation by ``np.random.default_rng(seed)``; the first
    ``round(test_size * 1797)`` images of it are the test set (359 with the
    defaults), the rest the training set (1438).
    """
    import torch

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size debe estar entre 0 y 1 (sin incluirlos); se recibió {test_size}")
    X, y = load_digits_arrays()
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_size * len(y)))
    test, train = order[:n_test], order[n_test:]
    X = (X / MAX_PIXEL).astype(np.float32)
    return (torch.from_numpy(X[train]), torch.from_numpy(X[test]),
            torch.from_numpy(y[train]), torch.from_numpy(y[test]))
