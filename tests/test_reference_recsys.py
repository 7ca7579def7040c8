"""The 05_recsys reference agrees with independent formulations, its named bugs really differ, and the data are sound."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.data.ratings import Ratings, load_movielens, make_ratings
from reference_impl import recsys as ref
from reference_impl import recsys_bugs as bug


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> Ratings:
    return make_ratings(seed=3)


# -- the data -----------------------------------------------------------------------------------

def test_make_ratings_is_seeded_and_well_formed(data):
    again, other = make_ratings(seed=3), make_ratings(seed=4)
    assert all(np.array_equal(getattr(data, f), getattr(again, f)) for f in ("user", "item", "rating", "timestamp"))
    assert not np.array_equal(data.rating[:100], other.rating[:100])
    assert (data.num_users, data.num_items) == (300, 500)
    assert data.user.dtype == np.int64 and data.item.dtype == np.int64 and data.timestamp.dtype == np.int64
    assert data.rating.dtype == np.float32 and set(np.unique(data.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 0 <= data.user.min() and data.user.max() < 300 and 0 <= data.item.min() and data.item.max() < 500
    pairs = data.user * data.num_items + data.item
    assert len(np.unique(pairs)) == len(data)  # no pair rated twice
    assert np.bincount(data.user, minlength=300).min() >= 8
    assert 0.04 < len(data) / (300 * 500) < 0.12  # sparse, like MovieLens (6 %)
    assert 3.2 < data.rating.mean() < 4.0 and np.bincount(data.rating.astype(int)).argmax() in (3, 4)
    assert "valoraciones" in repr(data) and np.array_equal(data.user_ids, np.arange(300))


def test_make_ratings_has_a_long_tail_and_structure(data):
    per_item = np.bincount(data.item, minlength=data.num_items)
    top = np.sort(per_item)[::-1]
    assert top[: len(top) // 10].sum() / top.sum() > 0.35  # a few blockbusters
    assert (per_item < 5).mean() > 0.03  # and many items nobody rates
    per_user = np.bincount(data.user, minlength=data.num_users)
    assert per_user.max() > 4 * np.median(per_user)  # a few very active users
    means = np.array([data.rating[data.item == i].mean() for i in range(data.num_items) if per_item[i] >= 10])
    assert np.corrcoef(per_item[per_item >= 10], means)[0, 1] > 0.1  # popular items are better liked
    for u in range(20):  # each user's timestamps grow with their history
        assert len(np.unique(data.timestamp[data.user == u])) == (data.user == u).sum()


def test_make_ratings_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="num_items"):
        make_ratings(num_items=10, min_per_user=8)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["udata", "dat", "csv"])
def test_load_movielens_reads_each_format_and_renumbers(tmp_path, fmt):
    rows = [(196, 242, 3, 881250949), (186, 302, 3, 891717742), (22, 377, 1, 878887116), (196, 51, 2, 880606923),
            (22, 242, 5, 875747190)]
    if fmt == "udata":
        path = _write(tmp_path / "u.data", ["\t".join(map(str, r)) for r in rows])
    elif fmt == "dat":
        path = _write(tmp_path / "ratings.dat", ["::".join(map(str, r)) for r in rows])
    else:
        path = _write(tmp_path / "ratings.csv", ["userId,movieId,rating,timestamp"]
                      + [f"{u},{i},{r}.0,{t}" for u, i, r, t in rows])
    ml = load_movielens(path)
    assert (ml.num_users, ml.num_items, len(ml)) == (3, 4, 5)
    assert ml.user_ids.tolist() == [22, 186, 196] and ml.item_ids.tolist() == [51, 242, 302, 377]
    assert ml.user_ids[ml.user].tolist() == [r[0] for r in rows] and ml.item_ids[ml.item].tolist() == [r[1] for r in rows]
    assert ml.rating.tolist() == [3.0, 3.0, 1.0, 2.0, 5.0] and ml.rating.dtype == np.float32
    assert ml.timestamp.tolist() == [r[3] for r in rows]


def test_load_movielens_keeps_the_latest_rating_of_a_pair_and_reports_bad_lines(tmp_path):
    ml = load_movielens(_write(tmp_path / "u.data", ["1 10 2 100", "1 10 5 300", "2 10 4 200", "1 10 3 250"]))
    assert len(ml) == 2 and ml.rating.tolist() == [5.0, 4.0]
    with pytest.raises(ValueError, match="línea 2"):
        load_movielens(_write(tmp_path / "bad.data", ["1 10 2 100", "1 10 x 300"]))
    with pytest.raises(ValueError, match="4 campos"):
        load_movielens(_write(tmp_path / "short.data", ["1 10 2"]))


def test_generated_data_round_trip_through_the_loader(tmp_path):
    small = make_ratings(num_users=30, num_items=40, mean_per_user=10, min_per_user=3, seed=1)
    lines = [f"{u + 1}\t{i + 1}\t{int(r)}\t{t}" for u, i, r, t in zip(small.user, small.item, small.rating,
                                                                       small.timestamp, strict=True)]
    ml = load_movielens(_write(tmp_path / "u.data", lines))
    assert ml.num_users == len(np.unique(small.user)) and np.array_equal(ml.user_ids[ml.user] - 1, small.user)
    assert np.array_equal(ml.rating, small.rating) and np.array_equal(ml.timestamp, small.timestamp)


# -- q1 ---------------------------------------------------------------------------------------

def test_ratings_matrix_puts_each_rating_in_its_cell(data):
    R, mask = ref.ratings_matrix(data.user, data.item, data.rating, data.num_users, data.num_items)
    assert R.dtype == torch.float32 and mask.dtype == torch.bool and R.shape == (300, 500)
    assert int(mask.sum()) == len(data) and torch.all(R[~mask] == 0)
    for n in range(0, len(data), 997):
        assert R[data.user[n], data.item[n]] == data.rating[n] and mask[data.user[n], data.item[n]]


def test_split_per_user_counts_disjoint_cover_and_seed(data):
    train, test = ref.split_per_user(data.user, 0.2, seed=5)
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(data)
    for u, want in ref.held_out_counts(data.user, 0.2).items():
        assert (data.user[test] == u).sum() == want == int(0.2 * (data.user == u).sum())
    again, other = ref.split_per_user(data.user, 0.2, seed=5), ref.split_per_user(data.user, 0.2, seed=6)
    assert np.array_equal(again[1], test) and not np.array_equal(other[1], test)
    assert not np.array_equal(test, bug.split_first(data.user, 0.2)[1])
    counts = [(data.user[t] == u).sum() for u in range(5) for t in (bug.split_global(data.user, 0.2, 5)[1],)]
    assert counts != [(data.user[test] == u).sum() for u in range(5)]
    assert len(np.intersect1d(*bug.split_leaky(data.user, 0.2, 5))) > 0
    assert len(bug.split_rounded(data.user, 0.2, 5)[1]) > len(test)


# -- q2 ---------------------------------------------------------------------------------------

def _model(U=6, n_items=7, k=3, mu=3.5, cls=ref.MatrixFactorization):
    model = cls(U, n_items, k, mu).double()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return model


def test_mf_names_shapes_init_and_mu():
    model = ref.MatrixFactorization(300, 400, 8, mu=3.6)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        "P.weight": (300, 8), "Q.weight": (400, 8), "user_bias.weight": (300, 1), "item_bias.weight": (400, 1)}
    assert tuple(model.state_dict()) == ref.PARAM_NAMES and model.mu == 3.6 and isinstance(model.mu, float)
    assert abs(model.P.weight.std().item() / ref.INIT_STD - 1) < 0.05 and abs(model.Q.weight.mean().item()) < 0.01
    assert not model.user_bias.weight.any() and not model.item_bias.weight.any()
    assert bug.MFDefaultInit(300, 400, 8).P.weight.std().item() > 0.9


def test_mf_forward_is_the_formula_and_predict_all_agrees():
    model = _model()
    user, item = torch.tensor([0, 5, 5, 2]), torch.tensor([6, 1, 1, 0])
    by_hand = torch.stack([model.mu + model.user_bias.weight[u, 0] + model.item_bias.weight[i, 0]
                           + model.P.weight[u] @ model.Q.weight[i] for u, i in zip(user, item, strict=True)])
    torch.testing.assert_close(model(user, item), by_hand)
    full = model.predict_all()
    assert full.shape == (6, 7)
    torch.testing.assert_close(full[user, item], by_hand)
    for cls in (bug.MFNoBias, bug.MFNoMu):
        buggy = _model(cls=cls)
        assert not torch.allclose(buggy(user, item), by_hand) and not torch.allclose(buggy.predict_all(), full)
    assert _model(cls=bug.MFBiasNotSqueezed)(user, item).shape == (4, 4)


def test_mf_gradients_add_up_over_repeated_rows_and_sparse_tables_agree():
    model = _model()
    user, item = torch.tensor([1, 1, 3]), torch.tensor([2, 4, 2])
    upstream = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    model(user, item).backward(upstream)
    Q = model.Q.weight.detach()
    torch.testing.assert_close(model.P.weight.grad[1], 0.5 * Q[2] - 1.0 * Q[4])
    assert not model.P.weight.grad[0].any() and model.user_bias.weight.grad[1, 0].item() == pytest.approx(-0.5)
    sparse = ref.MatrixFactorization(6, 7, 3, 3.5).double()
    for name in ("P", "Q", "user_bias", "item_bias"):
        setattr(sparse, name, torch.nn.Embedding.from_pretrained(getattr(model, name).weight.detach().clone(),
                                                                 freeze=False, sparse=True))
    sparse(user, item).backward(upstream)
    assert sparse.P.weight.grad.is_sparse
    for name, p in model.named_parameters():
        torch.testing.assert_close(dict(sparse.named_parameters())[name].grad.to_dense(), p.grad)


# -- q3 ---------------------------------------------------------------------------------------

def _dense(U=5, n_items=6):
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(U, n_items, generator=g) < 0.4
    mask[0, 0] = True
    R = torch.where(mask, torch.randint(1, 6, (U, n_items), generator=g).float(), torch.zeros(U, n_items))
    pred = (torch.randn(U, n_items, generator=g, dtype=torch.float64) + 3).requires_grad_()
    return pred, R, mask


def test_masked_mse_counts_only_the_observed_entries():
    pred, R, mask = _dense()
    loss = ref.masked_mse(pred, R, mask)
    torch.testing.assert_close(loss, F.mse_loss(pred[mask], R[mask].double()))
    loss.backward()
    assert not pred.grad[~mask].any()
    torch.testing.assert_close(pred.grad[mask], 2 * (pred[mask] - R[mask]).detach() / mask.sum())
    for wrong in (bug.masked_mse_all_entries, bug.masked_mse_sum, bug.masked_mse_over_all_cells):
        assert not torch.isclose(wrong(pred, R, mask), loss)
    assert ref.rmse(pred, R, mask) == pytest.approx(math.sqrt(loss.item()))
    assert bug.rmse_no_sqrt(pred, R, mask) == pytest.approx(loss.item())
    assert isinstance(ref.rmse(pred, R, mask), float)


def test_l2_penalty_gradient_is_adams_weight_decay():
    a, b = _model(), _model()
    pred_R_mask = _dense(6, 7)[1:]
    penalty = ref.l2_penalty(a, 0.3)
    assert penalty.item() == pytest.approx(0.15 * sum((p**2).sum().item() for p in a.parameters()))
    penalty.backward()
    for p in a.parameters():
        torch.testing.assert_close(p.grad, 0.3 * p.detach())
        p.grad = None
    opt_a = torch.optim.Adam(a.parameters(), lr=0.05, weight_decay=0.3)
    opt_b = torch.optim.Adam(b.parameters(), lr=0.05)
    for _ in range(3):
        for model, opt, extra in ((a, opt_a, 0.0), (b, opt_b, 0.3)):
            opt.zero_grad()
            loss = ref.masked_mse(model.predict_all(), *pred_R_mask)
            (loss + (ref.l2_penalty(model, extra) if extra else 0.0)).backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    m = _model()
    assert bug.l2_penalty_no_biases(m, 0.3).item() < ref.l2_penalty(m, 0.3).item()
    assert bug.l2_penalty_no_half(m, 0.3).item() == pytest.approx(2 * ref.l2_penalty(m, 0.3).item())


# -- q4 ---------------------------------------------------------------------------------------

def test_train_mf_equals_an_adam_loop_and_keeps_the_dtype():
    _, R, mask = _dense(6, 7)
    ours, theirs = _model(), _model()
    history = ref.train_mf(ours, R, mask, steps=4, lr=0.03, weight_decay=0.2)
    opt = torch.optim.Adam(theirs.parameters(), lr=0.03, weight_decay=0.2)
    expected = []
    for _ in range(4):
        loss = F.mse_loss(theirs.predict_all()[mask], R[mask].double())
        expected.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert history == pytest.approx(expected, rel=1e-12) and ours.P.weight.dtype == torch.float64
    for pa, pb in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    for wrong in (bug.train_mf_no_weight_decay, bug.train_mf_no_zero_grad, bug.train_mf_all_entries):
        other = _model()
        wrong(other, R, mask, steps=4, lr=0.03, weight_decay=0.2)
        assert not torch.allclose(other.P.weight, ours.P.weight, rtol=1e-3, atol=1e-5)


def test_train_mf_beats_the_baseline_on_held_out_ratings(data):
    train, test = ref.split_per_user(data.user, 0.2, seed=0)
    R, mask = ref.ratings_matrix(data.user[train], data.item[train], data.rating[train], 300, 500)
    R_test, mask_test = ref.ratings_matrix(data.user[test], data.item[test], data.rating[test], 300, 500)
    mu = float(data.rating[train].mean())
    model = ref.MatrixFactorization(300, 500, 8, mu)
    history = ref.train_mf(model, R, mask, steps=60)
    assert len(history) == 60 and history[-1] < history[0]
    with torch.no_grad():
        got = ref.rmse(model.predict_all(), R_test, mask_test)
    baseline = ref.rmse(torch.full((300, 500), mu), R_test, mask_test)
    assert got < 0.85 and got < baseline - 0.1


# -- q5 ---------------------------------------------------------------------------------------

def test_bpr_loss_is_the_mean_negative_log_sigmoid_and_stable():
    pos, neg = torch.randn(9, dtype=torch.float64), torch.randn(9, dtype=torch.float64)
    loss = ref.bpr_loss(pos, neg)
    torch.testing.assert_close(loss, -torch.log(torch.sigmoid(pos - neg)).mean())
    torch.testing.assert_close(loss, F.softplus(neg - pos).mean())
    assert bug.bpr_loss_sum(pos, neg).item() == pytest.approx(9 * loss.item())
    assert not torch.isclose(bug.bpr_loss_swapped(pos, neg), loss)
    big = torch.tensor([-1000.0, 3.0], dtype=torch.float64)
    assert ref.bpr_loss(big, torch.zeros(2, dtype=torch.float64)).item() == pytest.approx((1000 + F.softplus(
        torch.tensor(-3.0, dtype=torch.float64)).item()) / 2)
    assert not torch.isfinite(bug.bpr_loss_naive(big, torch.zeros(2, dtype=torch.float64)))


def test_sample_negatives_never_returns_a_positive_and_is_uniform():
    pos_mask = torch.rand(4, 10) < 0.5
    pos_mask[:, 0] = False
    users = torch.arange(4).repeat_interleave(2000)
    neg = ref.sample_negatives(users, pos_mask)
    assert neg.dtype == torch.long and neg.shape == users.shape and not pos_mask[users, neg].any()
    for u in range(4):
        counts = torch.bincount(neg[users == u], minlength=10)[~pos_mask[u]].double()
        assert counts.min() > 0.6 * counts.mean()
    assert pos_mask[users, bug.sample_negatives_any(users, pos_mask)].any()


# -- q6 ---------------------------------------------------------------------------------------

def test_ranks_count_ties_against_the_model_and_skip_excluded_items():
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.1], [0.2, 0.8, 0.4, 0.6], [1.0, 1.0, 1.0, 1.0]])
    test_items = torch.tensor([1, 3, 2])
    assert ref.item_ranks(scores, test_items).tolist() == [3, 2, 4]
    assert bug.ranks_optimistic(scores, test_items).tolist() == [2, 2, 1]
    exclude = torch.tensor([[True, False, False, False], [False, True, False, False], [False, False, False, False]])
    assert ref.item_ranks(scores, test_items, exclude).tolist() == [2, 1, 4]
    assert ref.hit_rate_at_k(scores, test_items, 2) == pytest.approx(1 / 3)
    assert ref.hit_rate_at_k(scores, test_items, 2, exclude) == pytest.approx(2 / 3)
    assert bug.hit_rate_strict(scores, test_items, 2) == 0.0
    expected = (0.0 + 1 / math.log2(3) + 0.0) / 3
    assert ref.ndcg_at_k(scores, test_items, 2) == pytest.approx(expected)
    assert ref.ndcg_at_k(scores, test_items, 2, exclude) == pytest.approx((1 / math.log2(3) + 1 + 0) / 3)
    assert not math.isfinite(bug.ndcg_log_rank(scores, test_items, 2, exclude))
    assert bug.ndcg_shifted(scores, test_items, 4) < ref.ndcg_at_k(scores, test_items, 4)
    assert bug.hit_rate_no_exclude(scores, test_items, 1, exclude) < ref.hit_rate_at_k(scores, test_items, 1, exclude)
    assert bug.ndcg_natural_log(scores, test_items, 4) > ref.ndcg_at_k(scores, test_items, 4)


def test_metrics_equal_a_python_loop_on_random_scores_with_ties():
    g = torch.Generator().manual_seed(4)
    scores = torch.randint(0, 5, (40, 12), generator=g).double()
    test_items = torch.randint(0, 12, (40,), generator=g)
    exclude = torch.rand(40, 12, generator=g) < 0.3
    exclude[torch.arange(40), test_items] = False
    for k in (1, 3, 12):
        ranks = [int(((scores[u] >= scores[u, test_items[u]]) & ~exclude[u]).sum()) for u in range(40)]
        assert ref.hit_rate_at_k(scores, test_items, k, exclude) == pytest.approx(np.mean([r <= k for r in ranks]))
        assert ref.ndcg_at_k(scores, test_items, k, exclude) == pytest.approx(
            np.mean([1 / math.log2(r + 1) if r <= k else 0.0 for r in ranks]))
