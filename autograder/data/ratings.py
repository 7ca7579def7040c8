"""Explicit ratings for the recommender-systems assignment: a seeded generator and a MovieLens reader.

:func:`make_ratings` draws a realistic, download-free stand-in for MovieLens:
users and items with latent factors, user and item biases, noise, integer
stars clipped to 1..5, a long tail of item popularity (a few blockbusters get
most of the ratings, most items get a handful), users whose activity varies a
lot, and a timestamp per rating. Pure numpy, deterministic for a seed.

:func:`load_movielens` reads MovieLens files that an instructor already has
(``u.data``: ``user item rating timestamp`` separated by tabs or spaces;
``ratings.dat``: ``user::item::rating::timestamp``; ``ratings.csv`` with the
header ``userId,movieId,rating,timestamp``). Their licence does not allow
redistribution, so they are never shipped: pass the path of your own copy.

Both return :class:`Ratings`: one entry per observed rating (a sparse
"coordinate list"), with users and items numbered ``0..num_users-1`` and
``0..num_items-1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["Ratings", "load_movielens", "make_ratings"]


@dataclass(frozen=True)
class Ratings:
    """Observed ratings as parallel arrays, one entry per (user, item) pair (no pair repeats).

    ``user`` and ``item`` are int64 in ``0..num_users-1`` / ``0..num_items-1``,
    ``rating`` float32 (stars), ``timestamp`` int64 (seconds since 1970).
    ``user_ids[u]`` / ``item_ids[i]`` are the original ids of user ``u`` and
    item ``i`` (for the generator, ``u`` and ``i`` themselves).
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    num_users: int
    num_items: int
    user_ids: np.ndarray
    item_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.rating)

    def __repr__(self) -> str:
        density = len(self) / max(1, self.num_users * self.num_items)
        return (f"Ratings({len(self)} valoraciones, {self.num_users} usuarios, {self.num_items} ítems, "
                f"densidad {density:.2%})")


def make_ratings(num_users: int = 300, num_items: int = 500, num_factors: int = 4, *,
                 mean_per_user: float = 35.0, min_per_user: int = 8, noise: float = 0.5,
                 popularity: float = 1.0, seed: int = 0) -> Ratings:
    """Synthetic explicit ratings with the shape of MovieLens.

    The "true" taste of user ``u`` for item ``i`` is
    ``mu + b_u + b_i + p_u · q_i`` (global mean ``mu = 3.5``, biases
    ``b_u ~ N(0, 0.35²)`` and ``b_i ~ N(0, 0.45²)``, factors of
    ``num_factors`` dimensions whose product has a standard deviation of about
    0.7); an observed rating is that plus Gaussian noise of standard deviation
    ``noise``, rounded to whole stars and clipped to 1..5.

    Which pairs are observed: user ``u`` rates ``n_u`` different items, with
    ``n_u`` long-tailed (log-normal, mean about ``mean_per_user``, at least
    ``min_per_user``, at most half the items); items are picked with
    probability proportional to ``rank ** -popularity`` (Zipf), and the
    better-liked items tend to be the popular ones. Timestamps grow within
    each user's history. The entries come in random order.
    """
    if num_users < 1 or num_items < 2 * min_per_user or min_per_user < 1:
        raise ValueError(f"make_ratings: se necesitan num_users >= 1, min_per_user >= 1 y num_items >= "
                         f"2 * min_per_user (num_users={num_users}, num_items={num_items}, "
                         f"min_per_user={min_per_user})")
    rng = np.random.default_rng(seed)
    mu = 3.5
    user_bias = rng.normal(0.0, 0.35, num_users)
    item_bias = rng.normal(0.0, 0.45, num_items)
    scale = (0.7**2 / num_factors) ** 0.25  # std of p_u · q_i = scale² · sqrt(k) = 0.7
    P = rng.normal(0.0, scale, (num_users, num_factors))
    Q = rng.normal(0.0, scale, (num_items, num_factors))

    # popularity: Zipf over a ranking that favours the better-liked items (corr(b_i, popularity) > 0)
    order = np.argsort(-(item_bias + rng.normal(0.0, 0.6, num_items)))
    rank = np.empty(num_items)
    rank[order] = np.arange(1, num_items + 1)
    weight = rank**-popularity
    weight /= weight.sum()

    # activity: log-normal counts, clipped to [min_per_user, num_items // 2]
    sigma = 0.9
    extra = max(mean_per_user - min_per_user, 1.0)
    counts = min_per_user + rng.lognormal(np.log(extra) - sigma**2 / 2, sigma, num_users)
    counts = np.clip(np.round(counts), min_per_user, num_items // 2).astype(np.int64)

    users, items = [], []
    for u, n in enumerate(counts):
        users.append(np.full(n, u, dtype=np.int64))
        items.append(rng.choice(num_items, size=n, replace=False, p=weight))
    user = np.concatenate(users)
    item = np.concatenate(items).astype(np.int64)

    taste = mu + user_bias[user] + item_bias[item] + np.einsum("nk,nk->n", P[user], Q[item])
    rating = np.clip(np.round(taste + rng.normal(0.0, noise, len(user))), 1, 5).astype(np.float32)

    # timestamps: each user starts at some point of three years and rates at random intervals
    start = rng.integers(883_000_000, 977_000_000, num_users)  # 1997-2000, as MovieLens 100K/1M
    gaps = rng.exponential(3 * 86_400.0, len(user)).astype(np.int64) + 1
    offsets = np.concatenate([np.cumsum(g) for g in np.split(gaps, np.cumsum(counts)[:-1])])
    timestamp = start[user] + offsets

    perm = rng.permutation(len(user))
    ids_u, ids_i = np.arange(num_users, dtype=np.int64), np.arange(num_items, dtype=np.int64)
    return Ratings(user[perm], item[perm], rating[perm], timestamp[perm], num_users, num_items, ids_u, ids_i)


def load_movielens(path: str | os.PathLike) -> Ratings:
    """Read a MovieLens ratings file you already have; users and items renumbered from 0.

    Accepts ``u.data`` (tab- or space-separated ``user item rating
    timestamp``), ``ratings.dat`` (``user::item::rating::timestamp``) and
    ``ratings.csv`` (comma-separated, with or without the header line).
    Users and items are numbered in the order of their original ids; the
    original ids are kept in ``user_ids`` and ``item_ids``. A pair rated more
    than once keeps its latest rating.
    """
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            if "::" in line:
                fields = line.split("::")
            elif "," in line:
                fields = line.split(",")
            else:
                fields = line.split()
            if len(fields) < 4:
                raise ValueError(f"{path}, línea {number}: se esperaban 4 campos (user item rating timestamp), "
                                 f"hay {len(fields)}: {line[:80]!r}")
            try:
                rows.append((int(fields[0]), int(fields[1]), float(fields[2]), int(float(fields[3]))))
            except ValueError:
                if number == 1:  # a CSV header (userId,movieId,rating,timestamp)
                    continue
                raise ValueError(f"{path}, línea {number}: no es 'user item rating timestamp': {line[:80]!r}") from None
    if not rows:
        raise ValueError(f"{path}: no hay ninguna valoración")
    raw = np.array(rows, dtype=np.float64)
    raw_user, raw_item = raw[:, 0].astype(np.int64), raw[:, 1].astype(np.int64)
    timestamp = raw[:, 3].astype(np.int64)
    user_ids, user = np.unique(raw_user, return_inverse=True)
    item_ids, item = np.unique(raw_item, return_inverse=True)
    # one rating per pair: the latest (stable sort by time, keep the last of each pair)
    order = np.argsort(timestamp, kind="stable")
    pair = user[order] * len(item_ids) + item[order]
    _, last = np.unique(pair[::-1], return_index=True)
    keep = np.sort(order[::-1][last])
    return Ratings(user[keep].astype(np.int64), item[keep].astype(np.int64), raw[keep, 2].astype(np.float32),
                   timestamp[keep], len(user_ids), len(item_ids), user_ids, item_ids)
