"""Reference for ``05_recsys``: matrix factorization with biases, and ranking with BPR (D2L ch. 21).

Conventions (the pinned API):

- Ratings come as parallel arrays ``user``, ``item`` (int64) and ``rating``
  (float32), one entry per observed pair. The dense form is ``R`` (U, I)
  float32, 0 where unobserved, with ``mask`` (U, I) bool, True where observed.
- ``split_per_user`` sends ``int(test_fraction * n_u)`` random ratings of each
  user ``u`` (``n_u`` of them) to the test set, the rest to training.
- ``MatrixFactorization`` predicts ``mu + b_u + b_i + p_u · q_i``; its
  parameters are four ``nn.Embedding`` tables, ``P`` (U, k), ``Q`` (I, k),
  ``user_bias`` (U, 1) and ``item_bias`` (I, 1); ``mu`` is a plain float.
- Losses are means over the *observed* entries; ``l2_penalty`` is
  ``weight_decay / 2 · Σ ||θ||²`` over every parameter (biases included), so
  its gradient is exactly what ``Adam(weight_decay=...)`` adds.
- Ranking: the rank of user ``u``'s test item ``t`` is the number of
  candidate items scored at least as high as ``t`` (``t`` itself included;
  ties count against the model); items in ``exclude[u]`` are not candidates.

Device-agnostic: tensors stay on the device they come on. The grader runs
this in float64 on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PARAM_NAMES = ("P.weight", "Q.weight", "user_bias.weight", "item_bias.weight")
INIT_STD = 0.1  # factors ~ N(0, 0.1²): p_u · q_i starts near 0, so training starts from mu + biases

# ----------------------------------------------------------------------------
# q1 · the data: dense matrix and a per-user split


def ratings_matrix(user, item, rating, num_users, num_items):
    """``(R, mask)``: R (U, I) float32 with the ratings (0 elsewhere), mask (U, I) bool, True where rated."""
    user, item = torch.as_tensor(user, dtype=torch.long), torch.as_tensor(item, dtype=torch.long)
    R = torch.zeros(num_users, num_items, dtype=torch.float32)
    mask = torch.zeros(num_users, num_items, dtype=torch.bool)
    R[user, item] = torch.as_tensor(rating, dtype=torch.float32)
    mask[user, item] = True
    return R, mask


def held_out_counts(user, test_fraction):
    """How many test ratings each user gets: ``int(test_fraction * n_u)`` (a dict user -> count)."""
    users, counts = np.unique(np.asarray(user), return_counts=True)
    return {int(u): int(test_fraction * int(n)) for u, n in zip(users, counts, strict=True)}


def split_per_user(user, test_fraction=0.2, seed=0):
    """``(train_idx, test_idx)``: int64 indices into the ratings, each user's test ratings picked at random."""
    user = np.asarray(user)
    rng = np.random.default_rng(seed)
    test = []
    for u in np.unique(user):
        idx = np.flatnonzero(user == u)  # this user's ratings
        n_test = int(test_fraction * len(idx))
        test.append(rng.choice(idx, size=n_test, replace=False))
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(len(user)), test_idx).astype(np.int64)  # the rest: no rating in both
    return train_idx, test_idx


# ----------------------------------------------------------------------------
# q2 · the model


class MatrixFactorization(nn.Module):
    """r̂(u, i) = mu + b_u + b_i + p_u · q_i, with embedding tables P, Q, user_bias, item_bias."""

    def __init__(self, num_users, num_items, num_factors, mu=0.0):
        super().__init__()
        self.P = nn.Embedding(num_users, num_factors)  # (U, k): one row per user
        self.Q = nn.Embedding(num_items, num_factors)  # (I, k)
        self.user_bias = nn.Embedding(num_users, 1)  # (U, 1)
        self.item_bias = nn.Embedding(num_items, 1)  # (I, 1)
        self.mu = float(mu)  # the global mean: a number, not a parameter
        nn.init.normal_(self.P.weight, std=INIT_STD)
        nn.init.normal_(self.Q.weight, std=INIT_STD)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, user, item):
        """Predictions (B,) for the pairs (user[b], item[b])."""
        dot = (self.P(user) * self.Q(item)).sum(dim=-1)  # (B, k) -> (B,)
        return self.mu + dot + self.user_bias(user).squeeze(-1) + self.item_bias(item).squeeze(-1)

    def predict_all(self):
        """Every prediction at once: (U, I), entry [u, i] = forward(u, i)."""
        return (self.mu + self.P.weight @ self.Q.weight.T  # (U, I)
                + self.user_bias.weight  # (U, 1): one per row
                + self.item_bias.weight.T)  # (1, I): one per column


# ----------------------------------------------------------------------------
# q3 · losses


def masked_mse(pred, R, mask):
    """Mean of (pred - R)² over the observed entries only (a scalar tensor, differentiable)."""
    return ((pred - R)[mask] ** 2).mean()


def l2_penalty(model, weight_decay):
    """``weight_decay / 2 · Σ ||θ||²`` over every parameter of ``model`` (the four tables): a scalar tensor."""
    return weight_decay / 2 * sum((p**2).sum() for p in model.parameters())


def rmse(pred, R, mask):
    """sqrt(masked_mse) as a Python float (an evaluation: no gradient)."""
    with torch.no_grad():
        return float(masked_mse(pred, R, mask).sqrt())


# ----------------------------------------------------------------------------
# q4 · training: full batch, Adam with weight decay


def train_mf(model, R, mask, steps=60, lr=0.05, weight_decay=1e-3, device="cpu"):
    """``steps`` full-batch Adam steps on masked_mse; returns each step's loss (before its update)."""
    model.to(device)
    R, mask = R.to(device), mask.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    for _ in range(steps):
        loss = masked_mse(model.predict_all(), R, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


# ----------------------------------------------------------------------------
# q5 · implicit feedback: BPR


def bpr_loss(pos_scores, neg_scores):
    """Mean over the batch of -log σ(pos - neg), stable for any difference (logsigmoid)."""
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def sample_negatives(users, pos_mask):
    """One item per entry of ``users``, uniform among the items that user has no interaction with."""
    weights = (~pos_mask[users]).to(torch.float64)  # (B, I): 1 for the candidates
    return torch.multinomial(weights, 1).squeeze(1)  # (B,)


# ----------------------------------------------------------------------------
# q6 · ranking metrics


def item_ranks(scores, test_items, exclude=None):
    """1-based rank of each user's test item: #candidates scored >= its score (itself included)."""
    own = scores.gather(1, test_items.view(-1, 1))  # (U, 1)
    ahead = scores >= own  # ties count against the model
    if exclude is not None:
        ahead = ahead & ~exclude
    return ahead.sum(dim=1)  # (U,)


def hit_rate_at_k(scores, test_items, k, exclude=None):
    """Fraction of users whose test item ranks within the top k (rank <= k)."""
    return float((item_ranks(scores, test_items, exclude) <= k).double().mean())


def ndcg_at_k(scores, test_items, k, exclude=None):
    """Mean over users of 1 / log2(rank + 1) if rank <= k, else 0 (one relevant item: IDCG = 1)."""
    rank = item_ranks(scores, test_items, exclude).double()
    gain = torch.where(rank <= k, 1.0 / torch.log2(rank + 1.0), torch.zeros_like(rank))
    return float(gain.mean())


# ----------------------------------------------------------------------------
# helpers for the hidden tests (not part of the students' API)


def mf_with_state(state, mu, dtype=torch.float64):
    """The reference model holding ``state`` (name -> array), in ``dtype``."""
    (U, k), (n_items, _) = state["P.weight"].shape, state["Q.weight"].shape
    model = MatrixFactorization(U, n_items, k, mu).to(dtype)
    model.load_state_dict({name: torch.as_tensor(np.asarray(v), dtype=dtype) for name, v in state.items()})
    return model


def state_arrays(model):
    """``model.state_dict()`` as float64 numpy arrays."""
    return {k: v.detach().to("cpu", torch.float64).numpy().copy() for k, v in model.state_dict().items()}
