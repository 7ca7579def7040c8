"""Reference for ``04_rnn``: text to indices, an RNN language model from scratch, a GRU, attention.

Conventions (the pinned API, *Dive into Deep Learning* ch. 9, 10 and 11):

* A vocabulary puts ``"<unk>"`` at index 0, then the reserved tokens in the
  order given, then every other token with at least ``min_freq`` occurrences,
  most frequent first, ties in order of first appearance (D2L's ``Vocab``).
* Token batches are **batch-major**, ``(B, T)`` int64, as the data iterator
  yields them; the language model's logits are ``(B, T, V)``. Inside the
  model the loop runs over time: ``one_hot(X.T)`` is ``(T, B, V)``.
* Weights multiply on the right, ``x @ W`` with ``W`` of shape ``(in, out)``
  (as in D2L's scratch models, unlike ``nn.Linear``).
* The GRU takes **time-major** inputs ``(T, B, D)`` (like ``nn.GRU`` and
  D2L's ``GRUScratch``) and applies the reset gate as PyTorch's
  ``nn.GRUCell`` does: ``tanh(x W_xh + b_h + R * (H W_hh))``.
* Attention masks are boolean, ``True`` where a query may attend a key
  (``F.scaled_dot_product_attention``'s convention), broadcast to
  ``(B, Lq, Lk)``.

Device-agnostic: every function works on the device and dtype of its inputs.
"""

from __future__ import annotations

import collections
import math

import torch
import torch.nn.functional as F
from torch import nn

UNK = "<unk>"

# ----------------------------------------------------------------------------
# q1 · the vocabulary


class Vocab:
    """Character (or any token) vocabulary: ``<unk>`` = 0, reserved tokens, then by decreasing frequency."""

    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        counter = collections.Counter(tokens)  # insertion order = first appearance
        # sorted() is stable, so tokens with the same count keep the order in which they first appeared
        self.token_freqs = sorted(counter.items(), key=lambda item: item[1], reverse=True)
        self.idx_to_token = [UNK, *(reserved_tokens or [])]
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        for token, freq in self.token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.token_to_idx[token] = len(self.idx_to_token)
                self.idx_to_token.append(token)

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if isinstance(tokens, (list, tuple)):
            return [self[token] for token in tokens]
        return self.token_to_idx.get(tokens, 0)  # unknown -> <unk>

    def to_tokens(self, indices):
        if isinstance(indices, (list, tuple)):
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self):
        return 0


# ----------------------------------------------------------------------------
# q2 · one-hot encoding and sequential minibatches


def one_hot(X, num_classes):
    """``X`` (any shape, int64) -> float32 ``X.shape + (num_classes,)``, on ``X``'s device."""
    return (X.unsqueeze(-1) == torch.arange(num_classes, device=X.device)).to(torch.float32)


def seq_data_iter_sequential(corpus, batch_size, num_steps):
    """D2L's sequential partitioning without the random offset: row b of batch i + 1 continues row b of batch i.

    Yields ``(X, Y)``, both ``(batch_size, num_steps)`` int64, ``Y`` = ``X`` shifted one token ahead.
    """
    num_tokens = ((len(corpus) - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[:num_tokens], dtype=torch.long).reshape(batch_size, -1)
    Ys = torch.tensor(corpus[1:num_tokens + 1], dtype=torch.long).reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_batches * num_steps, num_steps):
        yield Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]


# ----------------------------------------------------------------------------
# q3 · the RNN cell and the RNN language model


def rnn_cell_forward(x, h, W_xh, W_hh, b_h):
    """One step: ``x`` (B, D), ``h`` (B, H) -> ``tanh(x W_xh + h W_hh + b_h)`` (B, H)."""
    return torch.tanh(x @ W_xh + h @ W_hh + b_h)


class RNNScratch(nn.Module):
    """A character-level RNN language model: one-hot -> tanh RNN -> linear output layer, from scratch."""

    def __init__(self, vocab_size, num_hiddens, sigma=0.01):
        super().__init__()
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.W_xh = nn.Parameter(torch.randn(vocab_size, num_hiddens) * sigma)
        self.W_hh = nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma)
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))
        self.W_hq = nn.Parameter(torch.randn(num_hiddens, vocab_size) * sigma)
        self.b_q = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, X, state=None):
        """``X`` (B, T) token indices, ``state`` (B, H) or None -> logits (B, T, V), final state (B, H)."""
        inputs = one_hot(X.T, self.vocab_size).to(self.W_xh.dtype)  # (T, B, V): the loop runs over time
        if state is None:
            state = torch.zeros((X.shape[0], self.num_hiddens), dtype=self.W_xh.dtype, device=X.device)
        outputs = []
        for x in inputs:  # x: (B, V)
            state = rnn_cell_forward(x, state, self.W_xh, self.W_hh, self.b_h)
            outputs.append(state @ self.W_hq + self.b_q)  # (B, V)
        return torch.stack(outputs, dim=1), state


RNN_PARAMS = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")


# ----------------------------------------------------------------------------
# q4 · gradient clipping, perplexity, greedy prediction


def clip_gradients(params, theta):
    """Scale every gradient by ``theta / ||g||`` when the global norm ``||g||`` exceeds ``theta``; return ``||g||``."""
    params = [p for p in params if p.grad is not None]
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
    if norm > theta:
        for p in params:
            p.grad.mul_(theta / norm)
    return float(norm)


def perplexity(logits, Y):
    """``exp`` of the mean cross-entropy over every position: logits (B, T, V), Y (B, T) -> float."""
    return math.exp(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1)).item())


def predict(model, prefix, num_preds, vocab, device="cpu"):
    """The prefix and ``num_preds`` characters more, each the most likely after what came before (greedy)."""
    state, outputs = None, [vocab[prefix[0]]]
    with torch.no_grad():
        for i in range(len(prefix) + num_preds - 1):
            X = torch.tensor([[outputs[-1]]], device=device)
            logits, state = model(X, state)
            if i < len(prefix) - 1:  # warm-up: feed the prefix, carrying the state
                outputs.append(vocab[prefix[i + 1]])
            else:
                outputs.append(int(logits[0, -1].argmax()))
    return "".join(vocab.idx_to_token[i] for i in outputs)


# ----------------------------------------------------------------------------
# q5 · the GRU


class GRU(nn.Module):
    """A GRU layer from scratch: inputs (T, B, D) -> outputs (T, B, H), final state (B, H)."""

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.num_hiddens = num_hiddens

        def triple():
            return (nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma),
                    nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma),
                    nn.Parameter(torch.zeros(num_hiddens)))

        self.W_xz, self.W_hz, self.b_z = triple()  # update gate
        self.W_xr, self.W_hr, self.b_r = triple()  # reset gate
        self.W_xh, self.W_hh, self.b_h = triple()  # candidate state

    def forward(self, inputs, H=None):
        if H is None:
            H = torch.zeros((inputs.shape[1], self.num_hiddens), dtype=inputs.dtype, device=inputs.device)
        outputs = []
        for X in inputs:  # X: (B, D)
            Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)
            R = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)
            H_tilde = torch.tanh(X @ self.W_xh + self.b_h + R * (H @ self.W_hh))  # R after the product (nn.GRUCell)
            H = Z * H + (1 - Z) * H_tilde
            outputs.append(H)
        return torch.stack(outputs), H


GRU_PARAMS = ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h")


def gru_cell_state(state: dict) -> dict:
    """The state of an ``nn.GRUCell`` that computes what :class:`GRU` does with ``state`` (gates r, z, n)."""
    return {
        "weight_ih": torch.cat([state["W_xr"], state["W_xz"], state["W_xh"]], dim=1).T,
        "weight_hh": torch.cat([state["W_hr"], state["W_hz"], state["W_hh"]], dim=1).T,
        "bias_ih": torch.cat([state["b_r"], state["b_z"], state["b_h"]]),
        "bias_hh": torch.zeros(3 * state["b_h"].shape[0], dtype=state["b_h"].dtype),
    }


def gru_with_grucell(state: dict, inputs, H=None):
    """:class:`GRU`'s forward computed by ``torch.nn.GRUCell`` with the mapped weights (an independent oracle)."""
    num_inputs, num_hiddens = state["W_xh"].shape
    cell = nn.GRUCell(num_inputs, num_hiddens).to(state["W_xh"].dtype)
    cell.load_state_dict(gru_cell_state(state))
    if H is None:
        H = inputs.new_zeros((inputs.shape[1], num_hiddens))
    outputs = []
    for X in inputs:
        H = cell(X, H)
        outputs.append(H)
    return torch.stack(outputs), H


# ----------------------------------------------------------------------------
# q6 · scaled dot-product attention and its masks


def scaled_dot_product_attention(q, k, v, mask=None):
    """q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv), mask bool (True = may attend) -> (out (B, Lq, dv), weights (B, Lq, Lk))."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # over the keys
    return weights @ v, weights


def causal_mask(num_steps, device="cpu"):
    """(T, T) bool: query i may attend keys j <= i."""
    return torch.ones((num_steps, num_steps), dtype=torch.bool, device=device).tril()


def padding_mask(valid_lens, num_keys):
    """(B, 1, num_keys) bool: in row b, the first ``valid_lens[b]`` keys are real, the rest padding."""
    return (torch.arange(num_keys, device=valid_lens.device)[None, :] < valid_lens[:, None])[:, None, :]


# ----------------------------------------------------------------------------
# q7 · one epoch of training


def train_epoch(model, batches, optimizer, theta=1.0, device="cpu"):
    """One pass over ``batches`` (sequential partitioning); returns the epoch's perplexity.

    The state starts at zeros (``None``), is carried from batch to batch and detached between them
    (truncated backpropagation through time); every step clips the gradients to global norm ``theta``.
    """
    state, total_loss, total_tokens = None, 0.0, 0
    for X, Y in batches:
        X, Y = X.to(device), Y.to(device)
        if state is not None:
            state = state.detach()  # keep the values, cut the graph of the previous batch
        logits, state = model(X, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        clip_gradients(model.parameters(), theta)
        optimizer.step()
        total_loss += loss.item() * Y.numel()
        total_tokens += Y.numel()
    return math.exp(total_loss / total_tokens)


def evaluate_perplexity(model, corpus, batch_size, num_steps, device="cpu"):
    """Perplexity of ``model`` over ``corpus`` (state carried across batches, no training)."""
    state, total_loss, total_tokens = None, 0.0, 0
    with torch.no_grad():
        for X, Y in seq_data_iter_sequential(corpus, batch_size, num_steps):
            logits, state = model(X.to(device), state)
            Y = Y.to(device)
            total_loss += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction="sum").item()
            total_tokens += Y.numel()
    return math.exp(total_loss / total_tokens)
