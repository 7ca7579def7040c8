"""The ``04_rnn`` oracle is right (checked against PyTorch's own layers where they exist), its bugs are bugs, the
names corpus keeps its promises, and the solved notebook agrees with the oracle."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.data.names import NAMES, load_text, make_names_text, normalise
from autograder.release import BEGIN, END
from conftest import ROOT, run_graded_cells
from conftest import cell_source as _source
from reference_impl import rnn as ref
from reference_impl import rnn_bugs as bug

NOTEBOOK = ROOT / "solutions" / "04_rnn" / "solution.ipynb"
SKIP = "skip-grading"


pytestmark = pytest.mark.usefixtures("one_torch_thread_seeded")


# ------------------------------------------------------------------------ q1, q2


def test_vocab_order_unknown_reserved_and_min_freq():
    tokens = list("banana bandana")  # a: 6, n: 4, b: 2, d: 1, " ": 1 (b before " " before d in first appearance)
    v = ref.Vocab(tokens)
    assert v.idx_to_token == ["<unk>", "a", "n", "b", " ", "d"]
    assert v.token_to_idx == {t: i for i, t in enumerate(v.idx_to_token)} and len(v) == 6
    assert v[list("band!")] == [3, 1, 2, 5, 0] and v["n"] == 2 and v["Ω"] == 0 and v.unk == 0
    assert v.to_tokens([3, 1]) == ["b", "a"] and v.to_tokens(2) == "n"
    rare = ref.Vocab(tokens, min_freq=2, reserved_tokens=["<pad>", " "])  # " " reserved and in the text: once
    assert rare.idx_to_token == ["<unk>", "<pad>", " ", "a", "n", "b"]
    assert rare["d"] == 0 and rare["b"] == 5  # min_freq is inclusive: b (2 times) stays
    assert bug.VocabSorted(tokens).idx_to_token == [" ", "<unk>", "a", "b", "d", "n"]
    assert ref.Vocab(list("zyxzy")).idx_to_token == ["<unk>", "z", "y", "x"]  # z and y tie: z appeared first
    assert bug.VocabAlphabeticalTies(list("zyxzy")).idx_to_token == ["<unk>", "y", "z", "x"]
    assert bug.VocabMinFreqStrict(tokens, min_freq=2).idx_to_token == ["<unk>", "a", "n"]
    assert bug.VocabNoReserved(tokens, reserved_tokens=["<pad>"]).idx_to_token == v.idx_to_token


def test_one_hot_matches_torch_and_keeps_the_device():
    X = torch.tensor([[0, 3, 1], [2, 2, 0]])
    out = ref.one_hot(X, 5)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 5)
    assert torch.equal(out, F.one_hot(X, 5).float())
    assert torch.equal(ref.one_hot(torch.tensor([0, 0]), 1), torch.ones(2, 1))


@pytest.mark.parametrize("n, batch_size, num_steps", [(35, 2, 5), (25, 1, 7), (17, 3, 1), (1000, 7, 23), (10, 4, 2)])
def test_sequential_batches_shift_by_one_and_continue_row_by_row(n, batch_size, num_steps):
    corpus = list(range(100, 100 + n))  # the value says the position
    batches = list(ref.seq_data_iter_sequential(corpus, batch_size, num_steps))
    columns = (n - 1) // batch_size
    assert len(batches) == columns // num_steps
    for i, (X, Y) in enumerate(batches):
        assert X.shape == Y.shape == (batch_size, num_steps) and X.dtype == Y.dtype == torch.long
        assert torch.equal(Y, X + 1)  # the next token
        assert torch.equal(X[:, 0], torch.tensor([100 + b * columns + i * num_steps for b in range(batch_size)]))
    unshifted = list(bug.seq_iter_unshifted(corpus, batch_size, num_steps))
    assert all(torch.equal(X, Y) for X, Y in unshifted)
    assert all(torch.equal(Y, X + 2) for X, Y in bug.seq_iter_shift_two(corpus, batch_size, num_steps))
    if batch_size > 1 and len(batches) > 1:
        rows = list(bug.seq_iter_consecutive_rows(corpus, batch_size, num_steps))
        assert not torch.equal(rows[1][0], batches[1][0])


# ------------------------------------------------------------------------ q3


def _random_rnn(V=7, H=5):
    model = ref.RNNScratch(V, H, sigma=0.5).double()
    with torch.no_grad():
        model.b_h.normal_()
        model.b_q.normal_()
    return model


def test_rnn_scratch_is_torch_rnn_with_the_weights_transposed():
    model = _random_rnn()
    X = torch.randint(0, 7, (3, 6))
    h0 = torch.randn(3, 5, dtype=torch.float64)
    logits, hT = model(X, h0)
    assert logits.shape == (3, 6, 7) and hT.shape == (3, 5)
    rnn = nn.RNN(7, 5, nonlinearity="tanh", batch_first=True).double()
    rnn.load_state_dict({"weight_ih_l0": model.W_xh.T, "weight_hh_l0": model.W_hh.T, "bias_ih_l0": model.b_h,
                         "bias_hh_l0": torch.zeros(5, dtype=torch.float64)})
    hs, h_last = rnn(F.one_hot(X, 7).double(), h0[None])
    torch.testing.assert_close(logits, hs @ model.W_hq + model.b_q)
    torch.testing.assert_close(hT, h_last[0])
    # state None is zeros; the cell is one step of the same
    torch.testing.assert_close(model(X)[0], model(X, torch.zeros(3, 5, dtype=torch.float64))[0])
    x, h = torch.randn(2, 7, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    torch.testing.assert_close(ref.rnn_cell_forward(x, h, model.W_xh, model.W_hh, model.b_h),
                               torch.tanh(x @ model.W_xh + h @ model.W_hh + model.b_h))
    assert [n for n, _ in model.named_parameters()] == list(ref.RNN_PARAMS)


def test_rnn_bugs_differ_from_the_reference():
    model = _random_rnn(6, 6)
    X = torch.randint(0, 6, (4, 4))  # B = T: the batch-axis loop runs
    good = model(X)[0]
    for cls in (bug.RNNBatchAxis, bug.RNNNoRecurrence):
        buggy = cls(6, 6).double()
        buggy.load_state_dict(model.state_dict())
        assert not torch.allclose(buggy(X)[0], good), cls.__name__
    x, h = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    args = (x, h, model.W_xh, model.W_hh, model.b_h)
    for fn in (bug.rnn_cell_no_tanh, bug.rnn_cell_relu, bug.rnn_cell_no_bias, bug.rnn_cell_W_hh_transposed,
               bug.rnn_cell_weights_swapped):
        assert not torch.allclose(fn(*args), ref.rnn_cell_forward(*args)), fn.__name__
    assert bug.time_major(good).shape == (4, 4, 6)


# ------------------------------------------------------------------------ q4


def _with_grads(*shapes, scale=1.0):
    params = [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, dtype=torch.float64) * scale
    return params


def test_clip_gradients_is_clip_grad_norm_without_its_epsilon():
    params = _with_grads((3, 4), (4,), (2, 2), scale=3.0)
    twins = [p.detach().clone().requires_grad_() for p in params]
    for p, t in zip(params, twins, strict=True):
        t.grad = p.grad.clone()
    norm = ref.clip_gradients(params, 1.5)
    torch_norm = nn.utils.clip_grad_norm_(twins, 1.5)
    assert norm == pytest.approx(float(torch_norm), rel=1e-12) and norm > 1.5
    for p, t in zip(params, twins, strict=True):
        torch.testing.assert_close(p.grad, t.grad, rtol=1e-5, atol=0)
    assert math.sqrt(sum(float((p.grad ** 2).sum()) for p in params)) == pytest.approx(1.5)
    small = _with_grads((3,), (2, 2), scale=0.01)
    before = [p.grad.clone() for p in small]
    assert ref.clip_gradients(small, 1.0) < 1.0
    assert all(torch.equal(p.grad, b) for p, b in zip(small, before, strict=True))  # small gradients untouched
    for fn in (bug.clip_per_parameter, bug.clip_no_sqrt, bug.clip_by_value):
        copies = [p.detach().clone().requires_grad_() for p in params]
        for c, p in zip(copies, params, strict=True):
            c.grad = p.grad.clone() * 4  # norm 6 > theta 1.5
        fn(copies, 1.5)
        assert not all(torch.allclose(c.grad, p.grad * 4 * 1.5 / 6) for c, p in zip(copies, params, strict=True))
    bug.clip_always(small, 1.0)
    assert not all(torch.equal(p.grad, b) for p, b in zip(small, before, strict=True))


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    logits = torch.randn(3, 5, 1, dtype=torch.float64).expand(3, 5, 11)
    Y = torch.randint(0, 11, (3, 5))
    assert ref.perplexity(logits, Y) == pytest.approx(11.0, rel=1e-12)
    logits = torch.randn(2, 4, 6, dtype=torch.float64)
    Y = torch.randint(0, 6, (2, 4))
    nll = -torch.log_softmax(logits, -1).gather(-1, Y[..., None]).mean()
    assert ref.perplexity(logits, Y) == pytest.approx(math.exp(nll.item()), rel=1e-12)
    for fn in (bug.perplexity_mean_of_rows, bug.perplexity_no_exp, bug.perplexity_base2):
        assert fn(logits, Y) != pytest.approx(ref.perplexity(logits, Y), rel=1e-6), fn.__name__
    square, Y_square = torch.randn(1, 6, 6, dtype=torch.float64), torch.randint(0, 6, (1, 6))
    assert bug.perplexity_classes_on_dim1(square, Y_square) != pytest.approx(ref.perplexity(square, Y_square))


def test_predict_warms_up_then_greedy():
    torch.manual_seed(3)
    text = make_names_text(40, seed=2)
    vocab = ref.Vocab(list(text))
    model = _random_rnn(len(vocab), 12)
    out = ref.predict(model, "mar", 12, vocab)
    assert out.startswith("mar") and len(out) == 15
    # the same as running the whole prefix at once, then feeding each prediction
    with torch.no_grad():
        logits, state = model(torch.tensor([vocab[list("mar")]]))
        chars = []
        for _ in range(12):
            chars.append(int(logits[0, -1].argmax()))
            logits, state = model(torch.tensor([[chars[-1]]]), state)
    assert out == "mar" + "".join(vocab.to_tokens(chars))
    assert ref.predict(model, "m", 0, vocab) == "m" and ref.predict(model, "ma", 0, vocab) == "ma"
    assert bug.predict_without_prefix(model, "mar", 4, vocab) == out[3:7]


# ------------------------------------------------------------------------ q5


def _random_gru(D=4, H=3):
    gru = ref.GRU(D, H, sigma=0.7).double()
    with torch.no_grad():
        for name in ("b_z", "b_r", "b_h"):
            getattr(gru, name).normal_()
    return gru


def test_gru_is_torch_grucell_and_gru_with_the_weights_mapped():
    gru = _random_gru()
    inputs, h0 = torch.randn(6, 2, 4, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    outputs, hT = gru(inputs, h0)
    assert outputs.shape == (6, 2, 3) and torch.equal(outputs[-1], hT)
    state = dict(gru.state_dict())
    cell_out, cell_h = ref.gru_with_grucell(state, inputs, h0)
    torch.testing.assert_close(outputs, cell_out)
    layer = nn.GRU(4, 3).double()  # the whole layer too: same gate order (r, z, n) and layout
    layer.load_state_dict({f"{k}_l0": v for k, v in ref.gru_cell_state(state).items()})
    layer_out, layer_h = layer(inputs, h0[None])
    torch.testing.assert_close(outputs, layer_out)
    torch.testing.assert_close(hT, layer_h[0])
    torch.testing.assert_close(gru(inputs)[0], gru(inputs, torch.zeros(2, 3, dtype=torch.float64))[0])
    assert [n for n, _ in gru.named_parameters()] == list(ref.GRU_PARAMS)


def test_gru_bugs_differ_from_the_reference():
    gru = _random_gru(3, 3)
    inputs, h0 = torch.randn(3, 3, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    good = gru(inputs, h0)[0]
    for cls in (bug.GRUResetBeforeProduct, bug.GRUUpdateSwapped, bug.GRUGatesSwapped, bug.GRUNoReset, bug.GRUBatchAxis):
        buggy = cls(3, 3).double()
        buggy.load_state_dict(gru.state_dict())
        assert not torch.allclose(buggy(inputs, h0)[0], good), cls.__name__


# ------------------------------------------------------------------------ q6


def test_attention_is_torch_sdpa_with_the_same_mask_convention():
    q, k, v = (torch.randn(2, s, d, dtype=torch.float64) for s, d in ((3, 8), (5, 8), (5, 4)))
    out, weights = ref.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, dtype=torch.float64))
    lens = torch.tensor([2, 5])
    mask = ref.padding_mask(lens, 5)
    assert mask.shape == (2, 1, 5) and mask.dtype == torch.bool
    assert mask[0, 0].tolist() == [True, True, False, False, False] and mask[1].all()
    out, weights = ref.scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert (weights[0, :, 2:] == 0).all()  # masked keys get no weight at all
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    causal = ref.causal_mask(4)
    assert causal.tolist() == [[j <= i for j in range(4)] for i in range(4)]
    torch.testing.assert_close(ref.scaled_dot_product_attention(x, x, x, causal)[0],
                               F.scaled_dot_product_attention(x, x, x, is_causal=True))
    assert bug.causal_mask_strict(3).tolist() == [[False] * 3, [True, False, False], [True, True, False]]
    assert bug.causal_mask_upper(3).tolist() == [[True] * 3, [False, True, True], [False, False, True]]
    assert bug.padding_mask_inclusive(lens, 5)[0, 0].tolist() == [True, True, True, False, False]
    assert bug.padding_mask_2d(lens, 5).shape == (2, 5)


def test_attention_bugs_differ_from_the_reference():
    q, k, v = (torch.randn(2, s, 8, dtype=torch.float64) for s in (3, 4, 4))
    mask = ref.padding_mask(torch.tensor([2, 3]), 4)
    good_out, good_w = ref.scaled_dot_product_attention(q, k, v, mask)
    for fn in (bug.sdpa_no_scale, bug.sdpa_scale_d, bug.sdpa_softmax_queries, bug.sdpa_mask_inverted,
               bug.sdpa_mask_zero, bug.sdpa_mask_after_softmax):
        out, w = fn(q, k, v, mask)
        assert not torch.allclose(w, good_w), fn.__name__


# ------------------------------------------------------------------------ q7


def test_train_epoch_learns_names_with_truncated_bptt():
    text = make_names_text(300, seed=4)
    vocab = ref.Vocab(list(text))
    batches = list(ref.seq_data_iter_sequential(vocab[list(text)], 8, 12))
    torch.manual_seed(0)
    model = ref.RNNScratch(len(vocab), 32, sigma=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    history = [ref.train_epoch(model, batches, optimizer, theta=1.0) for _ in range(6)]
    assert history[-1] < history[0] < len(vocab) * 1.5
    assert history[-1] < 0.6 * len(vocab)
    assert ref.evaluate_perplexity(model, vocab[list(make_names_text(100, seed=5))], 8, 12) < 0.7 * len(vocab)
    # without detach the second batch's backward runs into the first batch's freed graph
    broken = ref.RNNScratch(len(vocab), 8)

    def not_detached(model, batches, optimizer, theta=1.0):
        state = None
        for X, Y in batches:
            logits, state = model(X, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    with pytest.raises(RuntimeError, match="backward through the graph a second time|modified by an inplace"):
        not_detached(broken, batches[:2], torch.optim.SGD(broken.parameters(), lr=0.1))


def test_train_bugs_differ_from_the_reference():
    V, H = 6, 5
    corpus = torch.randint(0, V, (200,)).tolist()
    batches = list(ref.seq_data_iter_sequential(corpus, 3, 5))[:4]
    start = _random_rnn(V, H).state_dict()

    def run(fn):
        model = ref.RNNScratch(V, H).double()
        model.load_state_dict(start)
        ppl = fn(model, batches, torch.optim.SGD(model.parameters(), lr=0.5), 0.05)
        return ppl, model.W_hh.detach().clone()

    good_ppl, good_w = run(ref.train_epoch)
    for fn in (bug.train_epoch_state_reset, bug.train_epoch_no_clip, bug.train_epoch_no_zero_grad):
        assert not torch.allclose(run(fn)[1], good_w), fn.__name__
    assert run(bug.train_epoch_mean_of_ppl)[0] != pytest.approx(good_ppl, rel=1e-9)


# ------------------------------------------------------------------------ data


def test_names_text_is_seeded_and_made_of_the_list(tmp_path):
    text = make_names_text(200, seed=3)
    assert text == make_names_text(200, seed=3) and text != make_names_text(200, seed=4)
    words = text.split(" ")
    assert len(words) == 200 and set(words) <= set(NAMES)
    assert words.count(NAMES[0]) > words.count(NAMES[-1])  # frequent names come first in the list
    assert make_names_text(0) == ""
    assert len(set(NAMES)) == len(NAMES) and all(n == normalise(n) and " " not in n for n in NAMES)
    with pytest.raises(ValueError):
        make_names_text(-1)
    path = tmp_path / "libro.txt"
    path.write_text("En un  lugar\nde la Mancha,\n\n  de cuyo nombre\tno quiero acordarme", encoding="utf-8")
    assert load_text(path) == "en un lugar de la mancha, de cuyo nombre no quiero acordarme"
    assert load_text(path, lower=False, max_chars=12) == "En un lugar "


# ------------------------------------------------------------------------ the notebook


@pytest.fixture(scope="module")
def notebook():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def solution_namespace(notebook):
    return run_graded_cells(notebook)


def test_notebook_structure(notebook):
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    checks = [_source(c).strip() for c in code if _source(c).startswith("check(")]
    assert checks == [f'check("q{i}")' for i in range(1, 8)]
    assert any(_source(c).strip() == "check_all()" for c in code)
    for cell in code:
        lines = _source(cell).split("\n")
        assert sum(bool(BEGIN.match(x)) for x in lines) == sum(bool(END.match(x)) for x in lines)
        source = _source(cell)
        if re.search(r"%pip|plt\.|train_epoch\(model|tqdm|make_names_text\(3000", source) and "def " not in source:
            assert SKIP in cell["metadata"].get("tags", []), source[:80]
    api = next(_source(c) for c in notebook["cells"] if c.get("id") == "api")
    for name in ("Vocab", "one_hot", "seq_data_iter_sequential", "rnn_cell_forward", "RNNScratch", "clip_gradients",
                 "perplexity", "predict", "GRU", "scaled_dot_product_attention", "causal_mask", "padding_mask",
                 "train_epoch", "W_xh", "W_hq", "b_q", "W_hz", "(B, T, V)", "(T, B, D)", "float32", "int64"):
        assert name in api, name
    assert "ASSIGNMENT_ID = \"04_rnn\"" in "".join(_source(c) for c in code)


def test_solution_agrees_with_the_reference(solution_namespace):
    s = solution_namespace
    text = make_names_text(60, seed=9)
    for kwargs in ({}, {"min_freq": 3, "reserved_tokens": ["<pad>", " "]}):
        mine, theirs = s["Vocab"](list(text), **kwargs), ref.Vocab(list(text), **kwargs)
        assert mine.idx_to_token == theirs.idx_to_token and mine[list("josé!")] == theirs[list("josé!")]
        assert len(mine) == len(theirs) and mine.to_tokens([3, 1]) == theirs.to_tokens([3, 1])
    X = torch.randint(0, 9, (3, 4))
    assert torch.equal(s["one_hot"](X, 9), ref.one_hot(X, 9))
    corpus = list(range(57))
    for (a, b), (c, d) in zip(s["seq_data_iter_sequential"](corpus, 3, 4), ref.seq_data_iter_sequential(corpus, 3, 4),
                              strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)
    model, theirs = s["RNNScratch"](9, 6).double(), ref.RNNScratch(9, 6).double()
    theirs.load_state_dict(model.state_dict())
    h0 = torch.randn(3, 6, dtype=torch.float64)
    for a, b in zip(model(X, h0), theirs(X, h0), strict=True):
        torch.testing.assert_close(a, b)
    logits, Y = torch.randn(2, 3, 9, dtype=torch.float64), torch.randint(0, 9, (2, 3))
    assert s["perplexity"](logits, Y) == pytest.approx(ref.perplexity(logits, Y))
    vocab = ref.Vocab(list(text))
    lm = ref.RNNScratch(len(vocab), 8, sigma=0.5)
    assert s["predict"](lm, "ana", 6, vocab) == ref.predict(lm, "ana", 6, vocab)
    gru, their_gru = s["GRU"](4, 3).double(), ref.GRU(4, 3).double()
    their_gru.load_state_dict(gru.state_dict())
    inputs = torch.randn(5, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(gru(inputs)[0], their_gru(inputs)[0])
    q, k, v = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(2, 4, 8, dtype=torch.float64), \
        torch.randn(2, 4, 5, dtype=torch.float64)
    mask = ref.padding_mask(torch.tensor([1, 3]), 4)
    for a, b in zip(s["scaled_dot_product_attention"](q, k, v, mask), ref.scaled_dot_product_attention(q, k, v, mask),
                    strict=True):
        torch.testing.assert_close(a, b)
    assert torch.equal(s["causal_mask"](5), ref.causal_mask(5))
    assert torch.equal(s["padding_mask"](torch.tensor([1, 3]), 4), mask)
