"""04_rnn: every tolerance accepts several correct implementations and rejects the named bugs.

Each case runs the hidden check's own probe (fresh inputs from several seeds)
against implementations written here, in this process, and judges the answer
exactly as the grader does. Correct variants differ the way students' code
does: ``Counter.most_common`` vs a stable sort, ``torch.eye`` indexing vs a
comparison, a row lookup of ``W_xh`` vs a one-hot product, the whole prefix
at once vs one character at a time, ``einsum`` and ``torch.where(-1e9)`` vs
``masked_fill(-inf)``, float32 arithmetic, ``detach_()`` vs ``detach()``.
A bug that makes the probe raise must raise with its pointed hint.
"""

from __future__ import annotations

import collections
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.compare.hints import error_hints
from autograder.execute.runtime import runner, wire
from autograder.grade.cases import check_rng, probe_message
from autograder.grade.submission import judge_value
from reference_impl import rnn as ref
from reference_impl import rnn_bugs as bug

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def rnn(course):
    return course.spec("04_rnn")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- correct variants -----------------------------------------------------------------------


class VocabMostCommon:
    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        self.idx_to_token = ["<unk>", *(reserved_tokens or [])]
        for token, freq in collections.Counter(tokens).most_common():
            if freq >= min_freq and token not in self.idx_to_token:
                self.idx_to_token.append(token)
        self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if isinstance(tokens, str):
            return self.token_to_idx.get(tokens, 0)
        return [self.token_to_idx.get(t, 0) for t in tokens]

    def to_tokens(self, indices):
        return self.idx_to_token[indices] if isinstance(indices, int) else [self.idx_to_token[i] for i in indices]


class VocabCounting(VocabMostCommon):
    """Counts with a dict and a first-seen list, then sorts by -count, first position (a student's own loop)."""

    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        counts, first = {}, {}
        for position, token in enumerate(tokens):
            counts[token] = counts.get(token, 0) + 1
            first.setdefault(token, position)
        ordered = sorted(counts, key=lambda t: (-counts[t], first[t]))
        self.idx_to_token = ["<unk>"] + list(reserved_tokens or [])
        self.idx_to_token += [t for t in ordered if counts[t] >= min_freq and t not in self.idx_to_token]
        self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}


def one_hot_eye(X, num_classes):
    return torch.eye(num_classes, device=X.device)[X]


def one_hot_scatter(X, num_classes):
    out = torch.zeros((*X.shape, num_classes), device=X.device)
    return out.scatter_(-1, X.unsqueeze(-1), 1.0)


def seq_iter_views(corpus, batch_size, num_steps):
    corpus = torch.as_tensor(corpus)
    n = (len(corpus) - 1) // batch_size
    X_rows, Y_rows = corpus[: n * batch_size].view(batch_size, n), corpus[1: n * batch_size + 1].view(batch_size, n)
    for start in range(0, n - num_steps + 1, num_steps):
        yield X_rows[:, start: start + num_steps], Y_rows[:, start: start + num_steps]


def seq_iter_list(corpus, batch_size, num_steps):
    """Returns a list of pairs (not a generator), built row by row."""
    n = (len(corpus) - 1) // batch_size
    rows = [corpus[b * n:(b + 1) * n + 1] for b in range(batch_size)]
    pairs = []
    for start in range(0, (n // num_steps) * num_steps, num_steps):
        X = torch.tensor([r[start:start + num_steps] for r in rows])
        Y = torch.tensor([r[start + 1:start + num_steps + 1] for r in rows])
        pairs.append((X, Y))
    return pairs


def rnn_cell_concat(x, h, W_xh, W_hh, b_h):
    return torch.tanh(torch.cat([x, h], dim=1) @ torch.cat([W_xh, W_hh], dim=0) + b_h)


def float32(fn):
    """The same function computed in float32 and cast back (a student's float32 arithmetic somewhere)."""
    def wrapped(*args, **kwargs):
        dtype = next(a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point())
        cast = [a.float() if isinstance(a, torch.Tensor) and a.dtype == torch.float64 else a for a in args]
        return fn(*cast, **kwargs).to(dtype)
    wrapped.__name__ = f"float32({fn.__name__})"
    return wrapped


class RNNLookup(ref.RNNScratch):
    """The input term as a row lookup of W_xh (one_hot(x) @ W_xh), the output layer after the loop."""

    def forward(self, X, state=None):
        h = self.W_hh.new_zeros((X.shape[0], self.num_hiddens)) if state is None else state
        hs = []
        for t in range(X.shape[1]):
            h = torch.tanh(self.W_xh[X[:, t]] + h @ self.W_hh + self.b_h)
            hs.append(h)
        return torch.stack(hs, dim=1) @ self.W_hq + self.b_q, h


def rnn_using(cell):
    """The reference language model, stepping with ``cell`` (a student's RNNScratch calls their own cell)."""

    class RNNWithCell(ref.RNNScratch):
        def forward(self, X, state=None):
            inputs = ref.one_hot(X.T, self.vocab_size).to(self.W_xh.dtype)
            h = self.W_xh.new_zeros((X.shape[0], self.num_hiddens)) if state is None else state
            outs = []
            for x in inputs:
                h = cell(x, h, self.W_xh, self.W_hh, self.b_h)
                outs.append(h @ self.W_hq + self.b_q)
            return torch.stack(outs, dim=1), h

    return RNNWithCell


class RNNAddmm(ref.RNNScratch):
    """D2L's loop with ``torch.addmm`` and the logits gathered into a preallocated tensor."""

    def forward(self, X, state=None):
        inputs = ref.one_hot(X.T, self.vocab_size).to(self.W_xh.dtype)
        B, T = X.shape
        h = torch.zeros((B, self.num_hiddens), dtype=self.W_xh.dtype, device=X.device) if state is None else state
        outs = []
        for x in inputs:
            h = torch.tanh(torch.addmm(self.b_h, x, self.W_xh) + h @ self.W_hh)
            outs.append(torch.addmm(self.b_q, h, self.W_hq).unsqueeze(1))
        return torch.cat(outs, dim=1), h


def clip_cat(params, theta):
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.cat([g.flatten() for g in grads]).norm()
    coef = min(1.0, theta / norm.item())
    for g in grads:
        g *= coef
    return float(norm)


def clip_with_epsilon(params, theta):
    """torch's clip_grad_norm_ formula, written out: theta / (norm + 1e-6), clamped to 1."""
    params = [p for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    coef = torch.clamp(theta / (norm + 1e-6), max=1.0)
    for p in params:
        p.grad.detach().mul_(coef)
    return norm


def perplexity_gather(logits, Y):
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, Y.unsqueeze(-1)).mean()
    return torch.exp(nll).item()


def perplexity_loops(logits, Y):
    """Stable log-softmax by hand, position by position."""
    total, count = 0.0, 0
    for b in range(logits.shape[0]):
        for t in range(logits.shape[1]):
            z = logits[b, t]
            m = z.max()
            total += float(m + torch.log(torch.exp(z - m).sum()) - z[Y[b, t]])
            count += 1
    return math.exp(total / count)


def predict_whole_prefix(model, prefix, num_preds, vocab, device="cpu"):
    text = prefix
    with torch.no_grad():
        logits, state = model(torch.tensor([vocab[list(prefix)]], device=device))
        for _ in range(num_preds):
            idx = logits[0, -1].argmax().item()
            text += vocab.to_tokens(idx)
            logits, state = model(torch.tensor([[idx]], device=device), state)
    return text


class GRUInterpolated(ref.GRU):
    """``H = H_tilde + Z * (H - H_tilde)`` and an index loop over time."""

    def forward(self, inputs, H=None):
        if H is None:
            H = inputs.new_zeros((inputs.shape[1], self.num_hiddens))
        outputs = []
        for t in range(inputs.shape[0]):
            X = inputs[t]
            Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)
            R = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)
            H_tilde = torch.tanh(X @ self.W_xh + self.b_h + R * (H @ self.W_hh))
            H = H_tilde + Z * (H - H_tilde)
            outputs.append(H)
        return torch.stack(outputs), H


class GRUFused(ref.GRU):
    """The z and r gates from one concatenated product."""

    def forward(self, inputs, H=None):
        if H is None:
            H = torch.zeros(inputs.shape[1], self.num_hiddens, dtype=inputs.dtype, device=inputs.device)
        W_x = torch.cat([self.W_xz, self.W_xr], dim=1)
        W_h = torch.cat([self.W_hz, self.W_hr], dim=1)
        b = torch.cat([self.b_z, self.b_r])
        outputs = []
        for X in inputs:
            Z, R = torch.sigmoid(X @ W_x + H @ W_h + b).chunk(2, dim=1)
            H = Z * H + (1 - Z) * torch.tanh(X @ self.W_xh + self.b_h + R * (H @ self.W_hh))
            outputs.append(H)
        return torch.stack(outputs, dim=0), H


def sdpa_einsum(q, k, v, mask=None):
    scores = torch.einsum("bqd,bkd->bqk", q, k) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.full_like(scores, -1e9))
    weights = F.softmax(scores, dim=2)
    return torch.bmm(weights, v), weights


def sdpa_manual_softmax(q, k, v, mask=None):
    scores = torch.matmul(q, k.transpose(1, 2)) * (1.0 / math.sqrt(k.shape[-1]))
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -1e6)  # D2L's masked_softmax value
    e = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    weights = e / e.sum(dim=-1, keepdim=True)
    return weights @ v, weights


def causal_arange(num_steps, device="cpu"):
    i = torch.arange(num_steps, device=device)
    return i[:, None] >= i[None, :]


def padding_expand(valid_lens, num_keys):
    keys = torch.arange(num_keys, device=valid_lens.device).expand(len(valid_lens), num_keys)
    return (keys < valid_lens.unsqueeze(1)).unsqueeze(1)


def train_epoch_inplace(model, batches, optimizer, theta=1.0, device="cpu"):
    """detach_() in place, the classes moved to axis 1, the loss summed per token."""
    state, total, tokens = None, 0.0, 0
    for X, Y in batches:
        X, Y = X.to(device), Y.to(device)
        if state is not None:
            state.detach_()
        logits, state = model(X, state)
        loss = F.cross_entropy(logits.transpose(1, 2), Y)
        optimizer.zero_grad()
        loss.backward()
        ref.clip_gradients(list(model.parameters()), theta)
        optimizer.step()
        total += F.cross_entropy(logits.detach().transpose(1, 2), Y, reduction="sum").item()
        tokens += Y.numel()
    return math.exp(total / tokens)


def train_epoch_torch_clip(model, batches, optimizer, theta=1.0, device="cpu"):
    """A reset state at the start, torch's own clipping (1e-6 in the denominator)."""
    state, losses = None, []
    for X, Y in batches:
        state = None if state is None else state.detach()
        logits, state = model(X.to(device), state)
        loss = nn.CrossEntropyLoss()(logits.reshape(-1, logits.shape[-1]), Y.to(device).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), theta)
        optimizer.step()
        losses.append((loss.item(), Y.numel()))
    return math.exp(sum(v * n for v, n in losses) / sum(n for _, n in losses))


# -- buggy implementations written here (those not in reference_impl/rnn_bugs.py) ----------


class VocabKeyError(ref.Vocab):
    def __getitem__(self, tokens):
        if isinstance(tokens, (list, tuple)):
            return [self[t] for t in tokens]
        return self.token_to_idx[tokens]


def one_hot_int(X, num_classes):
    return F.one_hot(X, num_classes)


class RNNFloat32(ref.RNNScratch):
    """D2L's ``.type(torch.float32)`` one-hot, never cast to the weights' dtype."""

    def forward(self, X, state=None):
        inputs = ref.one_hot(X.T, self.vocab_size)
        h = torch.zeros((X.shape[0], self.num_hiddens), dtype=self.W_xh.dtype) if state is None else state
        outs = []
        for x in inputs:
            h = ref.rnn_cell_forward(x, h, self.W_xh, self.W_hh, self.b_h)
            outs.append(h @ self.W_hq + self.b_q)
        return torch.stack(outs, 1), h


class RNNTimeMajor(ref.RNNScratch):
    def forward(self, X, state=None):
        logits, state = ref.RNNScratch.forward(self, X, state)
        return logits.transpose(0, 1), state


def train_epoch_no_detach(model, batches, optimizer, theta=1.0, device="cpu"):
    state = None
    for X, Y in batches:
        logits, state = model(X, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        ref.clip_gradients(model.parameters(), theta)
        optimizer.step()
    return 1.0


class VocabDuplicateReserved(ref.Vocab):
    """The reserved tokens prepended without checking: one also in the text appears twice."""

    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        super().__init__(tokens, min_freq)
        self.idx_to_token[1:1] = list(reserved_tokens or [])
        self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}


class RNNRenamed(ref.RNNScratch):
    """The output weight called W_ho instead of the prescribed W_hq."""

    def __init__(self, vocab_size, num_hiddens, sigma=0.01):
        super().__init__(vocab_size, num_hiddens, sigma)
        self.W_ho = self._parameters.pop("W_hq")

    def forward(self, X, state=None):
        self.W_hq = self.W_ho
        return super().forward(X, state)


class RNNXavier(ref.RNNScratch):
    """Xavier initialisation instead of N(0, sigma^2)."""

    def __init__(self, vocab_size, num_hiddens, sigma=0.01):
        super().__init__(vocab_size, num_hiddens, sigma)
        for w in (self.W_xh, self.W_hh, self.W_hq):
            nn.init.xavier_normal_(w)


class GRUBiasBuffer(ref.GRU):
    """b_h registered as a buffer, not a parameter: it loads, but never learns."""

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__(num_inputs, num_hiddens, sigma)
        del self.b_h
        self.register_buffer("b_h", torch.zeros(num_hiddens))


def clip_no_return(params, theta):
    """D2L's grad_clipping: right gradients, returns nothing."""
    ref.clip_gradients(params, theta)


def clip_norm_after(params, theta):
    params = list(params)
    ref.clip_gradients(params, theta)
    return float(torch.sqrt(sum((p.grad ** 2).sum() for p in params)))


class GRUFloat32State(ref.GRU):
    """D2L's GRUScratch start: torch.zeros((B, H), device=...) without the dtype (float32 against float64)."""

    def forward(self, inputs, H=None):
        if H is None:
            H = torch.zeros((inputs.shape[1], self.num_hiddens), device=inputs.device)
        return ref.GRU.forward(self, inputs, H)


def predict_past_prefix(model, prefix, num_preds, vocab, device="cpu"):
    """``i <= len(prefix) - 1``: the warm-up reads prefix[len(prefix)] (an IndexError)."""
    state, outputs = None, [vocab[prefix[0]]]
    with torch.no_grad():
        for i in range(len(prefix) + num_preds - 1):
            logits, state = model(torch.tensor([[outputs[-1]]], device=device), state)
            outputs.append(vocab[prefix[i + 1]] if i <= len(prefix) - 1 else int(logits[0, -1].argmax()))
    return "".join(vocab.idx_to_token[i] for i in outputs)


def train_epoch_no_step(model, batches, optimizer, theta=1.0, device="cpu"):
    """Gradients computed and clipped, optimizer.step() never called: the weights never change."""
    state, total_loss, total_tokens = None, 0.0, 0
    for X, Y in batches:
        if state is not None:
            state = state.detach()
        logits, state = model(X.to(device), state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.to(device).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        ref.clip_gradients(model.parameters(), theta)
        total_loss += loss.item() * Y.numel()
        total_tokens += Y.numel()
    return math.exp(total_loss / total_tokens)


def train_epoch_no_backward(model, batches, optimizer, theta=1.0, device="cpu"):
    """No loss.backward(): clip_gradients gets no gradient at all (and raises on its empty sum)."""
    state = None
    for X, _ in batches:
        _, state = model(X.to(device), state)
        optimizer.zero_grad()
        ref.clip_gradients(model.parameters(), theta)
        optimizer.step()
    return 1.0


def perplexity_classes_dim1(logits, Y):
    return math.exp(F.cross_entropy(logits, Y).item())


# -- the cases --------------------------------------------------------------------------------

def base() -> dict:
    return {"Vocab": ref.Vocab, "one_hot": ref.one_hot, "seq_data_iter_sequential": ref.seq_data_iter_sequential,
            "rnn_cell_forward": ref.rnn_cell_forward, "RNNScratch": ref.RNNScratch,
            "clip_gradients": ref.clip_gradients, "perplexity": ref.perplexity, "predict": ref.predict,
            "GRU": ref.GRU, "scaled_dot_product_attention": ref.scaled_dot_product_attention,
            "causal_mask": ref.causal_mask, "padding_mask": ref.padding_mask, "train_epoch": ref.train_epoch}


def ns(**overrides) -> dict:
    return {**base(), **overrides}


VOCAB = [ns(), ns(Vocab=VocabMostCommon), ns(Vocab=VocabCounting)]
ONE_HOT = [ns(), ns(one_hot=one_hot_eye), ns(one_hot=one_hot_scatter)]
SEQ = [ns(), ns(seq_data_iter_sequential=seq_iter_views), ns(seq_data_iter_sequential=seq_iter_list)]
CELL = [ns(), ns(rnn_cell_forward=rnn_cell_concat), ns(rnn_cell_forward=float32(ref.rnn_cell_forward))]
RNN = [ns(), ns(RNNScratch=RNNLookup), ns(RNNScratch=RNNAddmm), ns(RNNScratch=rnn_using(float32(rnn_cell_concat)))]
CLIP = [ns(), ns(clip_gradients=clip_cat), ns(clip_gradients=clip_with_epsilon)]
PPL = [ns(), ns(perplexity=perplexity_gather), ns(perplexity=perplexity_loops)]
PREDICT = [ns(), ns(predict=predict_whole_prefix), ns(predict=predict_whole_prefix, Vocab=VocabMostCommon),
           ns(RNNScratch=RNNLookup)]
GRU = [ns(), ns(GRU=GRUInterpolated), ns(GRU=GRUFused)]
ATTENTION = [ns(), ns(scaled_dot_product_attention=sdpa_einsum),
             ns(scaled_dot_product_attention=sdpa_manual_softmax)]
TRAIN = [ns(), ns(train_epoch=train_epoch_inplace), ns(train_epoch=train_epoch_torch_clip),
         ns(RNNScratch=RNNLookup, clip_gradients=clip_cat)]

CASES = [
    # check, [correct namespaces], [(buggy namespace, word its hint or message must contain, or None)]
    ("vocab_basic", VOCAB, [(ns(Vocab=bug.VocabSorted), "orden alfabético"), (ns(Vocab=VocabKeyError), "get(token, 0)")]),
    ("vocab_ties", VOCAB, [(ns(Vocab=bug.VocabAlphabeticalTies), "primera vez"),
                           (ns(Vocab=bug.VocabSorted), "orden alfabético")]),
    ("vocab_min_freq", VOCAB, [(ns(Vocab=bug.VocabMinFreqStrict), "inclusivo"),
                               (ns(Vocab=bug.VocabNoReserved), "reserved_tokens")]),
    ("vocab_reserved_in_text", VOCAB, [(ns(Vocab=bug.VocabNoReserved), "reserved_tokens"),
                                       (ns(Vocab=VocabDuplicateReserved), None)]),
    ("one_hot_basic", ONE_HOT, [(ns(one_hot=one_hot_int), "float32")]),
    ("one_hot_shapes", ONE_HOT, [(ns(one_hot=one_hot_int), "float32")]),
    ("seq_iter_basic", SEQ, [(ns(seq_data_iter_sequential=bug.seq_iter_unshifted), "Y es igual a X"),
                             (ns(seq_data_iter_sequential=bug.seq_iter_shift_two), "dos tokens")]),
    ("seq_iter_shapes", SEQ, [(ns(seq_data_iter_sequential=bug.seq_iter_shift_two), "dos tokens"),
                              (ns(seq_data_iter_sequential=bug.seq_iter_consecutive_rows), "partición secuencial")]),
    ("seq_iter_continuity", SEQ, [(ns(seq_data_iter_sequential=bug.seq_iter_consecutive_rows), "partición secuencial"),
                                  (ns(seq_data_iter_sequential=bug.seq_iter_few_tokens), "tamaño del lote")]),
    ("rnn_cell", CELL, [(ns(rnn_cell_forward=bug.rnn_cell_no_tanh), "tanh"),
                        (ns(rnn_cell_forward=bug.rnn_cell_W_hh_transposed), "traspuesta")]),
    ("rnn_cell_batch1", CELL, [(ns(rnn_cell_forward=bug.rnn_cell_no_bias), "sesgo")]),
    ("rnn_cell_square", CELL, [(ns(rnn_cell_forward=bug.rnn_cell_weights_swapped), "cruzado")]),
    ("rnn_parameters", RNN, [(ns(RNNScratch=RNNRenamed), "W_hq")]),
    ("rnn_init", RNN, [(ns(RNNScratch=RNNXavier), "desviación")]),
    ("rnn_forward", RNN, [(ns(RNNScratch=rnn_using(bug.rnn_cell_relu)), None), (ns(RNNScratch=RNNFloat32), "dtype"),
                          (ns(RNNScratch=RNNTimeMajor), None)]),
    ("rnn_no_state", RNN, [(ns(RNNScratch=bug.RNNNoRecurrence), "no pasa de un paso"),
                           (ns(RNNScratch=bug.RNNNoOutputBias), "b_q"),
                           (ns(RNNScratch=RNNTimeMajor), "(T, B, V)")]),
    ("rnn_square", RNN, [(ns(RNNScratch=bug.RNNBatchAxis), "eje del lote"), (ns(RNNScratch=RNNTimeMajor), "(T, B, V)")]),
    ("rnn_single_step", RNN, [(ns(RNNScratch=rnn_using(bug.rnn_cell_no_tanh)), None), (ns(RNNScratch=RNNFloat32), "dtype")]),
    ("clip_large", CLIP, [(ns(clip_gradients=bug.clip_per_parameter), "global"),
                          (ns(clip_gradients=bug.clip_no_sqrt), "raíz"), (ns(clip_gradients=bug.clip_by_value), "valor"),
                          (ns(clip_gradients=lambda params, theta: 0.0), None),
                          (ns(clip_gradients=bug.clip_mean_of_squares), "media de los cuadrados")]),
    ("clip_small", CLIP, [(ns(clip_gradients=bug.clip_always), "no se tocan")]),
    ("clip_norm", CLIP, [(ns(clip_gradients=clip_no_return), "return"), (ns(clip_gradients=clip_norm_after), "antes"),
                         (ns(clip_gradients=bug.clip_no_sqrt), None),
                         (ns(clip_gradients=bug.clip_mean_of_squares), "media de los cuadrados")]),
    ("perplexity", PPL, [(ns(perplexity=bug.perplexity_no_exp), "exponencial"),
                         (ns(perplexity=bug.perplexity_mean_of_rows), "todas"),
                         (ns(perplexity=perplexity_classes_dim1), "reshape(-1, V)")]),
    ("perplexity_uniform", PPL, [(ns(perplexity=bug.perplexity_base2), "nats"),
                                 (ns(perplexity=perplexity_classes_dim1), "reshape(-1, V)")]),
    ("perplexity_square", PPL, [(ns(perplexity=perplexity_classes_dim1), "reshape(-1, V)")]),
    ("predict", PREDICT, [(ns(predict=bug.predict_no_warmup), "calienta"),
                          (ns(predict=bug.predict_state_reset), "no pasa de un paso"),
                          (ns(predict=bug.predict_without_prefix), "seguido"),
                          (ns(predict=bug.predict_one_short), "off-by-one"), (ns(predict=predict_past_prefix), "estricta")]),
    ("predict_long", PREDICT, [(ns(predict=bug.predict_no_warmup), "calienta"), (ns(Vocab=bug.VocabSorted), None)]),
    ("predict_edge", PREDICT, [(ns(predict=bug.predict_without_prefix), "seguido")]),
    ("gru_parameters", GRU, [(ns(GRU=GRUBiasBuffer), None)]),
    ("gru_forward", GRU, [(ns(GRU=bug.GRUResetBeforeProduct), "nn.GRUCell"), (ns(GRU=bug.GRUUpdateSwapped), "1 − Z"),
                          (ns(GRU=bug.GRUGatesSwapped), "cruzado"), (ns(GRU=bug.GRUNoReset), "reinicio"),
                          (ns(GRU=bug.GRUNoBiasZ), "sesgo b_z"), (ns(GRU=bug.GRUNoBiasR), "sesgo b_r"),
                          (ns(GRU=bug.GRUNoBiasH), "sesgo b_h"), (ns(GRU=bug.GRUWhzTransposed), "W_hz traspuesta"),
                          (ns(GRU=bug.GRUWhrTransposed), "W_hr traspuesta"),
                          (ns(GRU=bug.GRUWhhTransposed), "W_hh traspuesta")]),
    ("gru_no_state", GRU, [(ns(GRU=bug.GRUResetBeforeProduct), "nn.GRUCell"), (ns(GRU=GRUFloat32State), "dtype")]),
    ("gru_vs_grucell", GRU, [(ns(GRU=bug.GRUResetBeforeProduct), "nn.GRUCell"), (ns(GRU=bug.GRUUpdateSwapped), "1 − Z")]),
    ("gru_square", GRU, [(ns(GRU=bug.GRUBatchAxis), "recorre el lote"), (ns(GRU=bug.GRUNoBiasZ), "sesgo b_z")]),
    ("attention_basic", ATTENTION, [(ns(scaled_dot_product_attention=bug.sdpa_scale_d), "√d"),
                                    (ns(scaled_dot_product_attention=bug.sdpa_no_scale), "√d"),
                                    (ns(scaled_dot_product_attention=bug.sdpa_softmax_queries), "dim=-1"),
                                    (ns(scaled_dot_product_attention=bug.sdpa_softmax_batch), "dim=-1")]),
    ("attention_backward", ATTENTION, [(ns(scaled_dot_product_attention=bug.sdpa_scale_d), "√d")]),
    ("attention_padding", ATTENTION, [(ns(scaled_dot_product_attention=bug.sdpa_mask_inverted), "invertido"),
                                      (ns(scaled_dot_product_attention=bug.sdpa_mask_zero), "exp(0)"),
                                      (ns(scaled_dot_product_attention=bug.sdpa_mask_after_softmax), "después de la softmax"),
                                      (ns(scaled_dot_product_attention=bug.sdpa_softmax_queries), "dim=-1"),
                                      (ns(scaled_dot_product_attention=bug.sdpa_mask_ignored), "Ignoras la máscara")]),
    ("attention_causal", ATTENTION, [(ns(scaled_dot_product_attention=bug.sdpa_mask_zero), "exp(0)"),
                                     (ns(scaled_dot_product_attention=bug.sdpa_mask_after_softmax), "después de la softmax"),
                                     (ns(scaled_dot_product_attention=bug.sdpa_scale_d), "√d")]),
    ("attention_single_query", ATTENTION, [(ns(scaled_dot_product_attention=bug.sdpa_mask_zero), "exp(0)"),
                                           (ns(scaled_dot_product_attention=bug.sdpa_mask_ignored), "Ignoras la máscara")]),
    ("causal_mask", [ns(), ns(causal_mask=causal_arange)], [(ns(causal_mask=bug.causal_mask_strict), "diagonal"),
                                                            (ns(causal_mask=bug.causal_mask_upper), "futuro")]),
    ("padding_mask", [ns(), ns(padding_mask=padding_expand)], [(ns(padding_mask=bug.padding_mask_inclusive), "estricta"),
                                                               (ns(padding_mask=bug.padding_mask_2d), "(B, 1, num_keys)")]),
    ("train_epoch", TRAIN, [(ns(train_epoch=bug.train_epoch_state_reset), "vuelve a cero"),
                            (ns(train_epoch=bug.train_epoch_no_clip), "recortas"),
                            (ns(train_epoch=bug.train_epoch_no_zero_grad), "zero_grad"),
                            (ns(train_epoch=bug.train_epoch_mean_of_ppl), "media de las perplejidades"),
                            (ns(train_epoch=train_epoch_no_detach), "detach"),
                            (ns(train_epoch=bug.train_epoch_unweighted), "pondera"),
                            (ns(train_epoch=train_epoch_no_step), "optimizer.step()"),
                            (ns(train_epoch=train_epoch_no_backward), "loss.backward()")]),
    ("train_epoch_odd", TRAIN, [(ns(train_epoch=bug.train_epoch_state_reset), "vuelve a cero"),
                                (ns(train_epoch=train_epoch_no_detach), "detach")]),
]


_CASES: dict = {}


def answer(check, namespace, seed):
    """The probe's reply (``ok`` and the decoded value, or the error) on this seed's case (built once)."""
    key = (check.question, check.name, seed)
    if key not in _CASES:
        _CASES[key] = check.build(check_rng(seed, check))
    case = _CASES[key]
    message = probe_message(case.probe)
    torch.manual_seed(seed)
    reply = runner.run_probe(namespace, message["steps"], message["outputs"])
    if reply["ok"]:
        reply["value"] = wire.decode(wire.encode(reply["value"]))
    return case, reply


def _says(word, texts) -> bool:
    return any(word in t for t in texts)


@pytest.mark.parametrize("name, correct, bugs", CASES, ids=[c[0] for c in CASES])
def test_tolerance_accepts_correct_variants_and_rejects_named_bugs(rnn, name, correct, bugs):
    check = next(c for c in rnn.checks if c.name == name)
    assert len(correct) >= 2 and bugs
    for seed in SEEDS:
        for namespace in correct:
            case, reply = answer(check, namespace, seed)
            assert reply["ok"], (name, seed, reply)
            mismatches, _ = judge_value(reply["value"], case, "es")
            assert mismatches == [], (name, seed, mismatches)
        for namespace, word in bugs:
            case, reply = answer(check, namespace, seed)
            if not reply["ok"]:  # the bug breaks the probe: an error scores 0 too, with its hint where one is named
                err = reply.get("error") or {}
                hints = error_hints(case.patterns, str(err.get("type")), str(err.get("message")), "es")
                if word is not None:
                    assert _says(word, hints + [str(err.get("message"))]), (name, seed, word, err, hints)
                continue
            mismatches, hints = judge_value(reply["value"], case, "es")
            assert mismatches, (name, seed, word)
            if word is not None:
                texts = list(hints) + [str(getattr(m, "message", "")) for m in mismatches]
                assert _says(word, texts), (name, seed, word, hints)


@pytest.mark.slow
def test_training_target_accepts_correct_loops_and_rejects_one_without_zero_grad(rnn):
    """The perplexity bound (reference plus a margin) on new names: correct loops pass, no zero_grad fails."""
    check = next(c for c in rnn.checks if c.name == "train_target")
    seed = SEEDS[0]  # one seed: each run is 180 SGD steps (tests/ keeps to seconds)
    for namespace in (ns(), ns(train_epoch=train_epoch_inplace, RNNScratch=RNNLookup)):
        case, reply = answer(check, namespace, seed)
        assert reply["ok"] and judge_value(reply["value"], case, "es")[0] == [], seed
    case, reply = answer(check, ns(train_epoch=bug.train_epoch_no_zero_grad), seed)
    mismatches, _ = judge_value(reply["value"], case, "es")
    assert mismatches and "zero_grad" in str(mismatches[0].message), seed


def test_list_op_materialises_a_generator_and_stops_an_endless_one():
    """``@list``: how a probe gets a student's generator back as data; an endless one is cut, not hung."""
    from autograder.execute.runtime import ops

    got = ops.OPS["list"](ref.seq_data_iter_sequential(list(range(11)), 2, 2))
    assert [(X.tolist(), Y.tolist()) for X, Y in got] == [([[0, 1], [5, 6]], [[1, 2], [6, 7]]),
                                                          ([[2, 3], [7, 8]], [[3, 4], [8, 9]])]

    def endless():
        while True:
            yield 1

    assert ops.OPS["list"](endless(), limit=5) == [1, 1, 1, 1, 1]


def test_raises_patterns_name_a_bug_by_its_error_and_never_match_an_answer():
    from autograder.checks import BugPattern, Tolerance
    from autograder.compare.hints import detect

    pattern = BugPattern("raises", {"es": "usa detach", "en": "use detach"}, data="second time")
    assert error_hints([pattern], "RuntimeError", "Trying to backward through the graph a second time") == ["usa detach"]
    assert error_hints([pattern], "RuntimeError", "shape mismatch") == []
    assert detect(1.0, 2.0, [pattern], Tolerance(0, 0), generic=False) == []
