"""Named bugs of ``04_rnn``: what common mistakes compute, for the hidden tests' bug patterns.

Each function or class is the reference with one realistic mistake; the
hidden tests run it on the same inputs and, when a student's answer matches
it, say which mistake it is. ``tests/test_tolerances_rnn.py`` shows every
tolerance rejects them.
"""

from __future__ import annotations

import collections
import math

import torch
import torch.nn.functional as F

from . import rnn as ref

# ----------------------------------------------------------------------------
# q1 · the vocabulary


class VocabSorted(ref.Vocab):
    """D2L's newest ``Vocab``: every token, ``<unk>`` and the reserved ones included, in alphabetical order."""

    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        counter = collections.Counter(tokens)
        self.idx_to_token = sorted(set([ref.UNK, *(reserved_tokens or [])]
                                       + [t for t, f in counter.items() if f >= min_freq]))
        self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}

    def __getitem__(self, tokens):
        if isinstance(tokens, (list, tuple)):
            return [self[t] for t in tokens]
        return self.token_to_idx.get(tokens, self.token_to_idx[ref.UNK])


class VocabAlphabeticalTies(ref.Vocab):
    """Ties in frequency broken alphabetically instead of by first appearance."""

    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        counter = collections.Counter(tokens)
        ordered = sorted(counter, key=lambda t: (-counter[t], t))
        super().__init__([t for t in ordered for _ in range(counter[t])], min_freq, reserved_tokens)


class VocabMinFreqStrict(ref.Vocab):
    """Keeps only tokens seen *more* than ``min_freq`` times (``freq <= min_freq`` dropped)."""

    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        super().__init__(tokens, min_freq + 1, reserved_tokens)


class VocabNoReserved(ref.Vocab):
    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        super().__init__(tokens, min_freq, None)


# ----------------------------------------------------------------------------
# q2 · minibatches


def seq_iter_unshifted(corpus, batch_size, num_steps):
    """``Y`` equal to ``X``: the targets are not the *next* tokens."""
    for X, _ in ref.seq_data_iter_sequential(corpus, batch_size, num_steps):
        yield X, X.clone()


def seq_iter_shift_two(corpus, batch_size, num_steps):
    """Targets two tokens ahead (``corpus[i + 2]``): an off-by-one in the shift."""
    num_tokens = ((len(corpus) - 2) // batch_size) * batch_size
    Xs = torch.tensor(corpus[:num_tokens]).reshape(batch_size, -1)
    Ys = torch.tensor(corpus[2:num_tokens + 2]).reshape(batch_size, -1)
    for i in range(0, (Xs.shape[1] // num_steps) * num_steps, num_steps):
        yield Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]


def seq_iter_few_tokens(corpus, batch_size, num_steps):
    """``num_tokens = (len(corpus) - 1) // batch_size``, not multiplied back by ``batch_size``: a fraction of the
    corpus (the reshape fails unless that count is itself a multiple of ``batch_size``)."""
    num_tokens = (len(corpus) - 1) // batch_size
    Xs = torch.tensor(corpus[:num_tokens]).reshape(batch_size, -1)
    Ys = torch.tensor(corpus[1:num_tokens + 1]).reshape(batch_size, -1)
    for i in range(0, (Xs.shape[1] // num_steps) * num_steps, num_steps):
        yield Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]


def seq_iter_consecutive_rows(corpus, batch_size, num_steps):
    """Subsequences cut one after another and grouped ``batch_size`` at a time: row b of batch i + 1 does
    not continue row b of batch i (D2L's random partitioning without the shuffle)."""
    n = (len(corpus) - 1) // num_steps
    Xs = torch.tensor(corpus[:n * num_steps]).reshape(n, num_steps)
    Ys = torch.tensor(corpus[1:n * num_steps + 1]).reshape(n, num_steps)
    for i in range(0, (n // batch_size) * batch_size, batch_size):
        yield Xs[i:i + batch_size], Ys[i:i + batch_size]


# ----------------------------------------------------------------------------
# q3 · the RNN cell and the language model


def rnn_cell_no_tanh(x, h, W_xh, W_hh, b_h):
    return x @ W_xh + h @ W_hh + b_h


def rnn_cell_relu(x, h, W_xh, W_hh, b_h):
    return torch.relu(x @ W_xh + h @ W_hh + b_h)


def rnn_cell_no_bias(x, h, W_xh, W_hh, b_h):
    return torch.tanh(x @ W_xh + h @ W_hh)


def rnn_cell_W_hh_transposed(x, h, W_xh, W_hh, b_h):
    return torch.tanh(x @ W_xh + h @ W_hh.T + b_h)


def rnn_cell_weights_swapped(x, h, W_xh, W_hh, b_h):
    """``x`` multiplied by ``W_hh`` and ``h`` by ``W_xh`` (only runs when D = H)."""
    return torch.tanh(x @ W_hh + h @ W_xh + b_h)


class RNNBatchAxis(ref.RNNScratch):
    """The loop runs over the *batch* axis: ``one_hot(X)`` without ``.T`` (only runs when B = T)."""

    def forward(self, X, state=None):
        inputs = ref.one_hot(X, self.vocab_size).to(self.W_xh.dtype)  # (B, T, V), looped over B
        if state is None:
            state = torch.zeros((X.shape[0], self.num_hiddens), dtype=self.W_xh.dtype, device=X.device)
        outputs = []
        for x in inputs:
            state = ref.rnn_cell_forward(x, state, self.W_xh, self.W_hh, self.b_h)
            outputs.append(state @ self.W_hq + self.b_q)
        return torch.stack(outputs, dim=1), state


class RNNNoRecurrence(ref.RNNScratch):
    """Every step starts from the initial state: the new state is not carried to the next step."""

    def forward(self, X, state=None):
        inputs = ref.one_hot(X.T, self.vocab_size).to(self.W_xh.dtype)
        if state is None:
            state = torch.zeros((X.shape[0], self.num_hiddens), dtype=self.W_xh.dtype, device=X.device)
        outputs, h = [], state
        for x in inputs:
            h = ref.rnn_cell_forward(x, state, self.W_xh, self.W_hh, self.b_h)
            outputs.append(h @ self.W_hq + self.b_q)
        return torch.stack(outputs, dim=1), h


class RNNNoOutputBias(ref.RNNScratch):
    """The output layer without its bias: logits ``h_t @ W_hq`` instead of ``h_t @ W_hq + b_q``."""

    def forward(self, X, state=None):
        inputs = ref.one_hot(X.T, self.vocab_size).to(self.W_xh.dtype)
        if state is None:
            state = torch.zeros((X.shape[0], self.num_hiddens), dtype=self.W_xh.dtype, device=X.device)
        outputs = []
        for x in inputs:
            state = ref.rnn_cell_forward(x, state, self.W_xh, self.W_hh, self.b_h)
            outputs.append(state @ self.W_hq)
        return torch.stack(outputs, dim=1), state


def time_major(logits):
    """The logits as (T, B, V): stacked over dim 0 instead of 1."""
    return logits.transpose(0, 1)


# ----------------------------------------------------------------------------
# q4 · clipping, perplexity, prediction


def clip_per_parameter(params, theta):
    """Each gradient clipped by its *own* norm instead of the global one."""
    params = [p for p in params if p.grad is not None]
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
    for p in params:
        n = p.grad.norm()
        if n > theta:
            p.grad.mul_(theta / n)
    return float(norm)


def clip_no_sqrt(params, theta):
    """The "norm" is the sum of squares (no square root)."""
    params = [p for p in params if p.grad is not None]
    norm = sum((p.grad ** 2).sum() for p in params)
    if norm > theta:
        for p in params:
            p.grad.mul_(theta / norm)
    return float(norm)


def clip_mean_of_squares(params, theta):
    """The "norm" from the *mean* of each gradient's squares, ``sqrt(Σ_p mean(g²))``: too small."""
    params = [p for p in params if p.grad is not None]
    norm = torch.sqrt(sum((p.grad ** 2).mean() for p in params))
    if norm > theta:
        for p in params:
            p.grad.mul_(theta / norm)
    return float(norm)


def clip_always(params, theta):
    """Scales by ``theta / norm`` even when the norm is already below ``theta`` (small gradients grow)."""
    params = [p for p in params if p.grad is not None]
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
    for p in params:
        p.grad.mul_(theta / norm)
    return float(norm)


def clip_by_value(params, theta):
    params = [p for p in params if p.grad is not None]
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
    for p in params:
        p.grad.clamp_(-theta, theta)
    return float(norm)


def perplexity_classes_on_dim1(logits, Y):
    """``F.cross_entropy(logits, Y)`` on (B, T, V) logits: it reads axis 1 (time) as the classes (runs when T = V)."""
    return math.exp(F.cross_entropy(logits, Y).item())


def perplexity_mean_of_rows(logits, Y):
    """The mean of each sequence's perplexity instead of exp of the mean over every token."""
    ce = F.cross_entropy(logits.transpose(1, 2), Y, reduction="none").mean(dim=1)  # (B,)
    return torch.exp(ce).mean().item()


def perplexity_no_exp(logits, Y):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1)).item()


def perplexity_base2(logits, Y):
    return 2.0 ** F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1)).item()


def predict_no_warmup(model, prefix, num_preds, vocab, device="cpu"):
    """Only the prefix's last character is fed: the state forgets the rest of the prefix."""
    with torch.no_grad():
        X = torch.tensor([[vocab[prefix[-1]]]], device=device)
        logits, state = model(X)
        outputs = []
        for _ in range(num_preds):
            outputs.append(int(logits[0, -1].argmax()))
            logits, state = model(torch.tensor([[outputs[-1]]], device=device), state)
    return prefix + "".join(vocab.idx_to_token[i] for i in outputs)


def predict_state_reset(model, prefix, num_preds, vocab, device="cpu"):
    """The state is not passed back to the model: every step starts from zeros."""
    outputs = [vocab[prefix[0]]]
    with torch.no_grad():
        for i in range(len(prefix) + num_preds - 1):
            logits, _ = model(torch.tensor([[outputs[-1]]], device=device))
            outputs.append(vocab[prefix[i + 1]] if i < len(prefix) - 1 else int(logits[0, -1].argmax()))
    return "".join(vocab.idx_to_token[i] for i in outputs)


def predict_one_short(model, prefix, num_preds, vocab, device="cpu"):
    """The loop one step short, ``range(len(prefix) + num_preds - 2)``: one character fewer."""
    return ref.predict(model, prefix, num_preds - 1, vocab, device)


def predict_without_prefix(model, prefix, num_preds, vocab, device="cpu"):
    return ref.predict(model, prefix, num_preds, vocab, device)[len(prefix):]


# ----------------------------------------------------------------------------
# q5 · the GRU (modules built like the reference, forward changed)


def _gru_loop(self, inputs, H, step):
    if H is None:
        H = torch.zeros((inputs.shape[1], self.num_hiddens), dtype=inputs.dtype, device=inputs.device)
    outputs = []
    for X in inputs:
        H = step(X, H)
        outputs.append(H)
    return torch.stack(outputs), H


class GRUResetBeforeProduct(ref.GRU):
    """D2L's formula ``tanh(X W_xh + (R * H) W_hh + b_h)`` (Cho et al.), not ``nn.GRUCell``'s ``R * (H W_hh)``."""

    def forward(self, inputs, H=None):
        def step(X, H):
            Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)
            R = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)
            H_tilde = torch.tanh(X @ self.W_xh + (R * H) @ self.W_hh + self.b_h)
            return Z * H + (1 - Z) * H_tilde
        return _gru_loop(self, inputs, H, step)


class GRUUpdateSwapped(ref.GRU):
    """``H = (1 - Z) * H + Z * H_tilde``: the roles of Z and 1 - Z swapped."""

    def forward(self, inputs, H=None):
        def step(X, H):
            Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)
            R = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)
            H_tilde = torch.tanh(X @ self.W_xh + self.b_h + R * (H @ self.W_hh))
            return (1 - Z) * H + Z * H_tilde
        return _gru_loop(self, inputs, H, step)


class GRUGatesSwapped(ref.GRU):
    """The reset gate uses the update gate's weights and the other way round."""

    def forward(self, inputs, H=None):
        def step(X, H):
            R = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)
            Z = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)
            H_tilde = torch.tanh(X @ self.W_xh + self.b_h + R * (H @ self.W_hh))
            return Z * H + (1 - Z) * H_tilde
        return _gru_loop(self, inputs, H, step)


class GRUNoReset(ref.GRU):
    """The candidate ignores the reset gate."""

    def forward(self, inputs, H=None):
        def step(X, H):
            Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)
            H_tilde = torch.tanh(X @ self.W_xh + self.b_h + H @ self.W_hh)
            return Z * H + (1 - Z) * H_tilde
        return _gru_loop(self, inputs, H, step)


class _GRUOneWrong(ref.GRU):
    """The reference's step with one bias left out (``drop``) or one state weight used transposed (``transposed``)."""

    drop = ""
    transposed = ""

    def forward(self, inputs, H=None):
        def w(name):
            return getattr(self, name).T if name == self.transposed else getattr(self, name)

        def b(name):
            return 0.0 if name == self.drop else getattr(self, name)

        def step(X, H):
            Z = torch.sigmoid(X @ self.W_xz + H @ w("W_hz") + b("b_z"))
            R = torch.sigmoid(X @ self.W_xr + H @ w("W_hr") + b("b_r"))
            H_tilde = torch.tanh(X @ self.W_xh + b("b_h") + R * (H @ w("W_hh")))
            return Z * H + (1 - Z) * H_tilde
        return _gru_loop(self, inputs, H, step)


class GRUNoBiasZ(_GRUOneWrong):
    """The update gate without ``b_z``."""

    drop = "b_z"


class GRUNoBiasR(_GRUOneWrong):
    """The reset gate without ``b_r``."""

    drop = "b_r"


class GRUNoBiasH(_GRUOneWrong):
    """The candidate without ``b_h``."""

    drop = "b_h"


class GRUWhzTransposed(_GRUOneWrong):
    transposed = "W_hz"


class GRUWhrTransposed(_GRUOneWrong):
    transposed = "W_hr"


class GRUWhhTransposed(_GRUOneWrong):
    transposed = "W_hh"


class GRUBatchAxis(ref.GRU):
    """The loop runs over dim 1 (the batch) instead of dim 0 (time); only runs when T = B."""

    def forward(self, inputs, H=None):
        out, H = ref.GRU.forward(self, inputs.transpose(0, 1), H)
        return out.transpose(0, 1), H


# ----------------------------------------------------------------------------
# q6 · attention


def sdpa_no_scale(q, k, v, mask=None):
    return _sdpa(q, k, v, mask, 1.0)


def sdpa_scale_d(q, k, v, mask=None):
    """Scores divided by d instead of sqrt(d)."""
    return _sdpa(q, k, v, mask, q.shape[-1])


def _sdpa(q, k, v, mask, scale, dim=-1, fill=float("-inf"), invert=False):
    scores = q @ k.transpose(-2, -1) / scale
    if mask is not None:
        scores = scores.masked_fill(mask if invert else ~mask, fill)
    weights = torch.softmax(scores, dim=dim)
    return weights @ v, weights


def sdpa_softmax_queries(q, k, v, mask=None):
    """The softmax over the queries (dim -2) instead of the keys (dim -1)."""
    return _sdpa(q, k, v, mask, math.sqrt(q.shape[-1]), dim=-2, fill=-1e9)


def sdpa_softmax_batch(q, k, v, mask=None):
    """The softmax over the batch axis (dim 0) instead of the keys."""
    return _sdpa(q, k, v, mask, math.sqrt(q.shape[-1]), dim=0)


def sdpa_mask_ignored(q, k, v, mask=None):
    """The mask never applied: every key gets weight."""
    return _sdpa(q, k, v, None, math.sqrt(q.shape[-1]))


def sdpa_mask_inverted(q, k, v, mask=None):
    """``True`` read as "masked out" (nn.MultiheadAttention's key_padding_mask convention)."""
    return _sdpa(q, k, v, mask, math.sqrt(q.shape[-1]), fill=-1e9, invert=True)


def sdpa_mask_zero(q, k, v, mask=None):
    """Masked scores set to 0 instead of -inf: exp(0) = 1, the masked keys still get weight."""
    return _sdpa(q, k, v, mask, math.sqrt(q.shape[-1]), fill=0.0)


def sdpa_mask_after_softmax(q, k, v, mask=None):
    """The weights of masked keys zeroed *after* the softmax: the rest no longer add up to 1."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights


def causal_mask_strict(num_steps, device="cpu"):
    """The diagonal excluded: a position may not attend itself."""
    return torch.ones((num_steps, num_steps), dtype=torch.bool, device=device).tril(-1)


def causal_mask_upper(num_steps, device="cpu"):
    """The future allowed and the past forbidden."""
    return torch.ones((num_steps, num_steps), dtype=torch.bool, device=device).triu()


def padding_mask_inclusive(valid_lens, num_keys):
    """``<=`` instead of ``<``: one padding key too many."""
    return (torch.arange(num_keys, device=valid_lens.device)[None, :] <= valid_lens[:, None])[:, None, :]


def padding_mask_2d(valid_lens, num_keys):
    """(B, Lk) instead of (B, 1, Lk): broadcast against (B, Lq, Lk) it lines up with the queries, not the batch."""
    return torch.arange(num_keys, device=valid_lens.device)[None, :] < valid_lens[:, None]


# ----------------------------------------------------------------------------
# q7 · training


def _train(model, batches, optimizer, theta, device, *, carry=True, clip=True, zero_grad=True,
           mean_of_batch_ppl=False, weighted=True, retain_graph=False):
    state, losses, total_loss, total_tokens = None, [], 0.0, 0
    for X, Y in batches:
        X, Y = X.to(device), Y.to(device)
        if not carry:
            state = None
        elif state is not None:
            state = state.detach()
        logits, state = model(X, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if clip:
            ref.clip_gradients(model.parameters(), theta)
        optimizer.step()
        losses.append(loss.item())
        total_loss += loss.item() * Y.numel() if weighted else loss.item()
        total_tokens += Y.numel()
    if mean_of_batch_ppl:
        return sum(math.exp(v) for v in losses) / len(losses)
    return math.exp(total_loss / total_tokens)


def train_epoch_state_reset(model, batches, optimizer, theta=1.0, device="cpu"):
    """The state starts from zeros in every batch: nothing is carried between consecutive batches."""
    return _train(model, batches, optimizer, theta, device, carry=False)


def train_epoch_no_clip(model, batches, optimizer, theta=1.0, device="cpu"):
    return _train(model, batches, optimizer, theta, device, clip=False)


def train_epoch_no_zero_grad(model, batches, optimizer, theta=1.0, device="cpu"):
    return _train(model, batches, optimizer, theta, device, zero_grad=False)


def train_epoch_mean_of_ppl(model, batches, optimizer, theta=1.0, device="cpu"):
    """The mean of the batches' perplexities instead of exp of the mean loss."""
    return _train(model, batches, optimizer, theta, device, mean_of_batch_ppl=True)


def train_epoch_unweighted(model, batches, optimizer, theta=1.0, device="cpu"):
    """The batches' mean losses added up without their token counts, then divided by the total of tokens."""
    return _train(model, batches, optimizer, theta, device, weighted=False)
