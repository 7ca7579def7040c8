"""Known-wrong variants of ``reference_impl.recsys`` (instructor-only).

Each reproduces one common student bug with the reference's signature, so
that the hidden tests can recognise its answer (a hint in the report) and
``tests/test_tolerances_recsys.py`` can show that the tolerances reject it.
Nothing here is correct on purpose.
"""

from __future__ import annotations

import numpy as np
import torch

from .recsys import MatrixFactorization, item_ranks, masked_mse

# -- q1 · the split -----------------------------------------------------------------


def split_global(user, test_fraction=0.2, seed=0):
    """Bug: one global random split (``int(f · N)`` ratings), not per user: counts per user are off."""
    n = len(user)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(test_fraction * n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def split_leaky(user, test_fraction=0.2, seed=0):
    """Bug: the test ratings are picked per user, but the training set keeps every rating (a leak)."""
    user = np.asarray(user)
    rng = np.random.default_rng(seed)
    test = [rng.choice(np.flatnonzero(user == u), int(test_fraction * np.sum(user == u)), replace=False)
            for u in np.unique(user)]
    return np.arange(len(user)), np.sort(np.concatenate(test))


def split_rounded(user, test_fraction=0.2, seed=0):
    """Bug: ``round(f · n_u)`` instead of ``int(f · n_u)``: one test rating too many for some users."""
    user = np.asarray(user)
    rng = np.random.default_rng(seed)
    test = [rng.choice(np.flatnonzero(user == u), round(test_fraction * np.sum(user == u)), replace=False)
            for u in np.unique(user)]
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(user)), test_idx), test_idx


def split_first(user, test_fraction=0.2, seed=0):
    """Bug: each user's *first* ratings (in input order) go to test: not random, the seed does nothing."""
    user = np.asarray(user)
    test = [np.flatnonzero(user == u)[: int(test_fraction * np.sum(user == u))] for u in np.unique(user)]
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(user)), test_idx), test_idx


def split_fraction_only(user, test_fraction=0.2, seed=0):
    """Bug: ``int(test_fraction)`` test ratings per user, the fraction never multiplied by n_u: an empty test set."""
    user = np.asarray(user)
    return np.arange(len(user)), np.array([], dtype=np.int64)


# -- q2 · the model -------------------------------------------------------------------


class MFNoBias(MatrixFactorization):
    """Bug: mu + p_u · q_i, without the user and item biases."""

    def forward(self, user, item):
        return self.mu + (self.P(user) * self.Q(item)).sum(dim=-1)

    def predict_all(self):
        return self.mu + self.P.weight @ self.Q.weight.T


class MFNoMu(MatrixFactorization):
    """Bug: the global mean mu is left out."""

    def forward(self, user, item):
        return super().forward(user, item) - self.mu

    def predict_all(self):
        return super().predict_all() - self.mu


class MFBiasNotSqueezed(MatrixFactorization):
    """Bug: the (B, 1) bias columns are added to the (B,) dot products: broadcasting gives (B, B)."""

    def forward(self, user, item):
        dot = (self.P(user) * self.Q(item)).sum(dim=-1)
        return self.mu + dot + self.user_bias(user) + self.item_bias(item)


class MFNoUserBias(MatrixFactorization):
    """Bug: mu + b_i + p_u · q_i, the user's bias left out."""

    def forward(self, user, item):
        return super().forward(user, item) - self.user_bias(user).squeeze(-1)


class MFNoItemBias(MatrixFactorization):
    """Bug: mu + b_u + p_u · q_i, the item's bias left out."""

    def forward(self, user, item):
        return super().forward(user, item) - self.item_bias(item).squeeze(-1)


class MFUserIndexAsBias(MatrixFactorization):
    """Bug: the user's *index* added where the bias table's entry goes (``b_u = user`` for ``self.user_bias(user)``)."""

    def forward(self, user, item):
        return super().forward(user, item) - self.user_bias(user).squeeze(-1) + user


class MFItemIndexAsBias(MatrixFactorization):
    """Bug: the item's *index* added where the bias table's entry goes."""

    def forward(self, user, item):
        return super().forward(user, item) - self.item_bias(item).squeeze(-1) + item


class MFDotMean(MatrixFactorization):
    """Bug: p_u · q_i as the *mean* of the k products, not their sum."""

    def forward(self, user, item):
        dot = (self.P(user) * self.Q(item)).mean(dim=-1)
        return self.mu + self.user_bias(user).squeeze(-1) + self.item_bias(item).squeeze(-1) + dot


class MFDefaultInit(MatrixFactorization):
    """Bug: nn.Embedding's own initialisation, N(0, 1) everywhere (biases included)."""

    def __init__(self, num_users, num_items, num_factors, mu=0.0):
        super().__init__(num_users, num_items, num_factors, mu)
        for p in self.parameters():
            torch.nn.init.normal_(p)


# -- q3 · losses ----------------------------------------------------------------------


def masked_mse_all_entries(pred, R, mask):
    """Bug: mean over *every* entry, the unrated ones (R = 0 there) included."""
    return ((pred - R) ** 2).mean()


def masked_mse_sum(pred, R, mask):
    """Bug: the sum over the observed entries, not their mean."""
    return ((pred - R)[mask] ** 2).sum()


def masked_mse_over_all_cells(pred, R, mask):
    """Bug: masked squares summed, but divided by the number of *all* entries (U · I)."""
    return (((pred - R) ** 2) * mask).sum() / mask.numel()


def l2_penalty_no_biases(model, weight_decay):
    """Bug: only P and Q are regularised, while Adam's weight_decay also shrinks the biases."""
    return weight_decay / 2 * ((model.P.weight**2).sum() + (model.Q.weight**2).sum())


def l2_penalty_no_half(model, weight_decay):
    """Bug: ``weight_decay · Σ ||θ||²``: its gradient is 2 · weight_decay · θ, twice Adam's."""
    return weight_decay * sum((p**2).sum() for p in model.parameters())


def l2_penalty_norms(model, weight_decay):
    """Bug: norms, not squared norms."""
    return weight_decay / 2 * sum(p.norm() for p in model.parameters())


def rmse_no_sqrt(pred, R, mask):
    """Bug: the MSE (no square root)."""
    with torch.no_grad():
        return float(masked_mse(pred, R, mask))


def rmse_all_entries(pred, R, mask):
    """Bug: over every entry, unrated ones included."""
    with torch.no_grad():
        return float(((pred - R) ** 2).mean().sqrt())


# -- q4 · training ----------------------------------------------------------------------


def _train(model, R, mask, steps, lr, weight_decay, device, *, loss_fn=masked_mse, zero=True, decay=True):
    model.to(device)
    R, mask = R.to(device), mask.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay if decay else 0.0)
    history = []
    for _ in range(steps):
        loss = loss_fn(model.predict_all(), R, mask)
        if zero:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


def train_mf_no_weight_decay(model, R, mask, steps=60, lr=0.05, weight_decay=1e-3, device="cpu"):
    """Bug: Adam without weight_decay: nothing keeps the factors small, and the model overfits."""
    return _train(model, R, mask, steps, lr, weight_decay, device, decay=False)


def train_mf_no_zero_grad(model, R, mask, steps=60, lr=0.05, weight_decay=1e-3, device="cpu"):
    """Bug: no optimizer.zero_grad(): every step uses the sum of all the gradients so far."""
    return _train(model, R, mask, steps, lr, weight_decay, device, zero=False)


def train_mf_all_entries(model, R, mask, steps=60, lr=0.05, weight_decay=1e-3, device="cpu"):
    """Bug: the loss over every entry: the unrated ones pull the predictions towards 0."""
    return _train(model, R, mask, steps, lr, weight_decay, device, loss_fn=masked_mse_all_entries)


# -- q5 · BPR -----------------------------------------------------------------------------


def bpr_loss_swapped(pos_scores, neg_scores):
    """Bug: -log σ(neg - pos): pushes the negatives above the positives."""
    return -torch.nn.functional.logsigmoid(neg_scores - pos_scores).mean()


def bpr_loss_sum(pos_scores, neg_scores):
    """Bug: the sum over the batch, not the mean."""
    return -torch.nn.functional.logsigmoid(pos_scores - neg_scores).sum()


def bpr_loss_naive(pos_scores, neg_scores):
    """Bug: -log(sigmoid(x)): sigmoid underflows to 0 for very negative x, and log(0) = -inf."""
    return -torch.log(torch.sigmoid(pos_scores - neg_scores)).mean()


def sample_negatives_any(users, pos_mask):
    """Bug: uniform over *all* items: the user's own positives come back as "negatives"."""
    return torch.randint(0, pos_mask.shape[1], (len(users),), device=pos_mask.device)


# -- q6 · ranking metrics ------------------------------------------------------------------


def ranks_optimistic(scores, test_items, exclude=None):
    """Bug: 1 + #candidates scored strictly higher: ties count in the model's favour."""
    own = scores.gather(1, test_items.view(-1, 1))
    ahead = scores > own
    if exclude is not None:
        ahead = ahead & ~exclude
    return ahead.sum(dim=1) + 1


def ranks_strictly_ahead(scores, test_items, exclude=None):
    """Bug: #candidates scored strictly higher (``>`` for ``>=``): neither the item itself nor its ties count, the
    first place is 0."""
    own = scores.gather(1, test_items.view(-1, 1))
    ahead = scores > own
    if exclude is not None:
        ahead = ahead & ~exclude
    return ahead.sum(dim=1)


def ranks_over_users(scores, test_items, exclude=None):
    """Bug: the comparisons summed over the users (``dim=0``), not over each user's items: (I,) "ranks"."""
    own = scores.gather(1, test_items.view(-1, 1))
    ahead = scores >= own
    if exclude is not None:
        ahead = ahead & ~exclude
    return ahead.sum(dim=0)


def _hit(rank, k, strict=False):
    return float(((rank < k) if strict else (rank <= k)).double().mean())


def _ndcg(rank, k, *, strict=False, shift=1.0, log=torch.log2):
    rank = rank.double()
    inside = (rank < k) if strict else (rank <= k)
    return float(torch.where(inside, 1.0 / log(rank + shift), torch.zeros_like(rank)).mean())


def hit_rate_strict(scores, test_items, k, exclude=None):
    """Bug: off by one in k: ``rank < k`` (the test item at rank k does not count)."""
    return _hit(item_ranks(scores, test_items, exclude), k, strict=True)


def hit_rate_optimistic(scores, test_items, k, exclude=None):
    """Bug: ties in the model's favour."""
    return _hit(ranks_optimistic(scores, test_items, exclude), k)


def hit_rate_no_exclude(scores, test_items, k, exclude=None):
    """Bug: ignores ``exclude``: the user's training items still compete with the test item."""
    return _hit(item_ranks(scores, test_items), k)


def ndcg_strict(scores, test_items, k, exclude=None):
    """Bug: off by one in k: ``rank < k``."""
    return _ndcg(item_ranks(scores, test_items, exclude), k, strict=True)


def ndcg_shifted(scores, test_items, k, exclude=None):
    """Bug: ``1 / log2(rank + 2)``, as if the 1-based rank were 0-based."""
    return _ndcg(item_ranks(scores, test_items, exclude), k, shift=2.0)


def ndcg_log_rank(scores, test_items, k, exclude=None):
    """Bug: ``1 / log2(rank)``: infinite at rank 1."""
    return _ndcg(item_ranks(scores, test_items, exclude), k, shift=0.0)


def ndcg_natural_log(scores, test_items, k, exclude=None):
    """Bug: natural logarithm instead of log2."""
    return _ndcg(item_ranks(scores, test_items, exclude), k, log=torch.log)


def ndcg_optimistic(scores, test_items, k, exclude=None):
    """Bug: ties in the model's favour."""
    return _ndcg(ranks_optimistic(scores, test_items, exclude), k)


def ndcg_no_exclude(scores, test_items, k, exclude=None):
    """Bug: ignores ``exclude``."""
    return _ndcg(item_ranks(scores, test_items), k)


def hit_rate_strictly_ahead(scores, test_items, k, exclude=None):
    """Bug: the rank counts only the candidates scored strictly higher (``>``): one place too good, ties for free."""
    return _hit(ranks_strictly_ahead(scores, test_items, exclude), k)


def hit_rate_over_users(scores, test_items, k, exclude=None):
    """Bug: the rank summed over the wrong axis (the users)."""
    return _hit(ranks_over_users(scores, test_items, exclude), k)


def ndcg_over_users(scores, test_items, k, exclude=None):
    """Bug: the rank summed over the wrong axis (the users)."""
    return _ndcg(ranks_over_users(scores, test_items, exclude), k)
