"""Build the bundled example submissions of 04_rnn from the solved notebook.

Run from the course root::

    .venv/bin/python solutions/04_rnn/make_examples.py

Each example is what one "student" hands in: the solved notebook as a
student would have it (the stub filled in: no ``### BEGIN/END SOLUTION``
markers, the release metadata), with a list of edits that plant one realistic
mistake (or a broken notebook). It is written to
``examples/<name>/<name>.ipynb``; its expected grade is in ``spec.toml``
(``[[examples]]``), and ``autograder validate 04_rnn`` checks it.

The edits are exact: a snippet that is not found (the solution changed) stops
the script with an error instead of writing an example without its bug. The
output is deterministic, so running the script again gives identical files.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the course root, for autograder.authoring
from autograder.authoring import Example, InsertCell, Redefine, Replace, write_examples  # noqa: E402

VARIANT_VOCAB = '''
class Vocab:
    """Vocabulario con Counter.most_common (a igual frecuencia, orden de primera aparición)."""

    def __init__(self, tokens, min_freq=0, reserved_tokens=None):
        self.idx_to_token = ["<unk>"]
        for token in reserved_tokens or []:
            self.idx_to_token.append(token)
        for token, freq in collections.Counter(tokens).most_common():
            if freq >= min_freq and token not in self.idx_to_token:
                self.idx_to_token.append(token)
        self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}

    def __len__(self):
        return len(self.token_to_idx)

    def __getitem__(self, tokens):
        if isinstance(tokens, str):
            return self.token_to_idx.get(tokens, 0)
        return [self.token_to_idx.get(t, 0) for t in tokens]

    def to_tokens(self, indices):
        if isinstance(indices, int):
            return self.idx_to_token[indices]
        return [self.idx_to_token[i] for i in indices]
'''

VARIANT_ONE_HOT = '''
def one_hot(X, num_classes):
    """Las filas de una matriz identidad, indexadas por X."""
    return torch.eye(num_classes, device=X.device)[X]
'''

VARIANT_SEQ = '''
def seq_data_iter_sequential(corpus, batch_size, num_steps):
    corpus = torch.as_tensor(corpus)
    n = (len(corpus) - 1) // batch_size  # columnas por fila
    X_rows = corpus[: n * batch_size].view(batch_size, n)
    Y_rows = corpus[1 : n * batch_size + 1].view(batch_size, n)
    for start in range(0, n - num_steps + 1, num_steps):
        yield X_rows[:, start : start + num_steps], Y_rows[:, start : start + num_steps]
'''

VARIANT_CELL = '''
def rnn_cell_forward(x, h, W_xh, W_hh, b_h):
    """Las dos multiplicaciones en una: [x, h] @ [[W_xh], [W_hh]]."""
    return torch.tanh(torch.cat([x, h], dim=1) @ torch.cat([W_xh, W_hh], dim=0) + b_h)
'''

VARIANT_RNN = '''
class RNNScratch(nn.Module):
    """Con la entrada como búsqueda de filas de W_xh (igual que one-hot @ W_xh) y la capa de salida al final."""

    def __init__(self, vocab_size, num_hiddens, sigma=0.01):
        super().__init__()
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.W_xh = nn.Parameter(sigma * torch.randn(vocab_size, num_hiddens))
        self.W_hh = nn.Parameter(sigma * torch.randn(num_hiddens, num_hiddens))
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))
        self.W_hq = nn.Parameter(sigma * torch.randn(num_hiddens, vocab_size))
        self.b_q = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, X, state=None):
        B, T = X.shape
        h = self.W_hh.new_zeros((B, self.num_hiddens)) if state is None else state
        hs = []
        for t in range(T):
            h = torch.tanh(self.W_xh[X[:, t]] + h @ self.W_hh + self.b_h)
            hs.append(h)
        return torch.stack(hs, dim=1) @ self.W_hq + self.b_q, h
'''

VARIANT_Q4 = '''
def clip_gradients(params, theta):
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.cat([g.flatten() for g in grads]).norm()
    coef = min(1.0, theta / norm.item())
    for g in grads:
        g *= coef
    return float(norm)


def perplexity(logits, Y):
    log_probs = torch.log_softmax(logits, dim=-1)
    nll = -log_probs.gather(-1, Y.unsqueeze(-1)).mean()
    return torch.exp(nll).item()


def predict(model, prefix, num_preds, vocab, device="cpu"):
    """Todo el prefijo de una vez: el estado final es el mismo que paso a paso."""
    text = prefix
    with torch.no_grad():
        logits, state = model(torch.tensor([vocab[list(prefix)]], device=device))
        for _ in range(num_preds):
            idx = logits[0, -1].argmax().item()
            text += vocab.to_tokens(idx)
            logits, state = model(torch.tensor([[idx]], device=device), state)
    return text
'''

VARIANT_ATTENTION = '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.einsum("bqd,bkd->bqk", q, k) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.full_like(scores, -1e9))
    weights = F.softmax(scores, dim=2)
    return torch.bmm(weights, v), weights


def causal_mask(num_steps, device="cpu"):
    i = torch.arange(num_steps, device=device)
    return i[:, None] >= i[None, :]


def padding_mask(valid_lens, num_keys):
    keys = torch.arange(num_keys, device=valid_lens.device).expand(len(valid_lens), num_keys)
    return (keys < valid_lens.unsqueeze(1)).unsqueeze(1)
'''

VARIANT_TRAIN = '''
def train_epoch(model, batches, optimizer, theta=1.0, device="cpu"):
    state, losses, counts = None, [], []
    for X, Y in batches:
        X, Y = X.to(device), Y.to(device)
        if state is not None:
            state.detach_()
        logits, state = model(X, state)
        loss = F.cross_entropy(logits.transpose(1, 2), Y)  # las clases en el eje 1
        optimizer.zero_grad()
        loss.backward()
        clip_gradients(list(model.parameters()), theta)
        optimizer.step()
        losses.append(loss.item() * Y.numel())
        counts.append(Y.numel())
    return math.exp(sum(losses) / sum(counts))
'''

EXAMPLES_LIST = [
    # -- q1 -----------------------------------------------------------------------------
    Example("vocab_alfabetico",
            "Vocab como la versión más reciente de D2L: sorted(set(...)) pone todos los tokens, \"<unk>\" incluido, "
            "en orden alfabético. Fallan las cuatro pruebas de Vocab y las de predict, que construyen el vocabulario "
            "del estudiante (el mensaje señala a Vocab).", (
        Replace("Vocab",
                "        counter = collections.Counter(tokens)  # guarda el orden de primera aparición\n"
                "        # sorted es estable: a igual frecuencia, se conserva el orden de primera aparición\n"
                "        self.token_freqs = sorted(counter.items(), key=lambda item: item[1], reverse=True)\n"
                "        self.idx_to_token = [\"<unk>\"] + list(reserved_tokens or [])\n"
                "        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}\n"
                "        for token, freq in self.token_freqs:\n"
                "            if freq < min_freq:\n"
                "                break  # están ordenados: los siguientes son aún menos frecuentes\n"
                "            if token not in self.token_to_idx:\n"
                "                self.token_to_idx[token] = len(self.idx_to_token)\n"
                "                self.idx_to_token.append(token)\n",
                "        counter = collections.Counter(tokens)\n"
                "        self.token_freqs = sorted(counter.items(), key=lambda item: item[1], reverse=True)\n"
                "        # la lista de tokens únicos, como en D2L\n"
                "        self.idx_to_token = list(sorted(set([\"<unk>\"] + list(reserved_tokens or []) + [\n"
                "            token for token, freq in self.token_freqs if freq >= min_freq])))\n"
                "        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}\n"),
        Replace("Vocab", "return self.token_to_idx.get(tokens, 0)",
                "return self.token_to_idx.get(tokens, self.token_to_idx[\"<unk>\"])"),
    )),
    # -- q2 -----------------------------------------------------------------------------
    Example("objetivos_sin_desplazar",
            "seq_data_iter_sequential toma Y de las mismas posiciones que X (olvida el +1): Y = X. Fallan las tres "
            "pruebas de minilotes; one_hot puntúa.", (
        Replace("seq_data_iter_sequential", "Ys = torch.tensor(corpus[1:num_tokens + 1], dtype=torch.long)",
                "Ys = torch.tensor(corpus[:num_tokens], dtype=torch.long)"),
    )),
    Example("usa_f_one_hot",
            "one_hot llama a F.one_hot: la pregunta 2 vale 0 con un mensaje que lo nombra; RNNScratch, que usa ese "
            "one_hot, funciona y puntúa (el atajo solo cuesta la pregunta que lo prohíbe).", (
        Replace("one_hot",
                "    classes = torch.arange(num_classes, device=X.device)  # (V,)\n"
                "    return (X.unsqueeze(-1) == classes).to(torch.float32)  # cada índice comparado con 0..V-1\n",
                "    return F.one_hot(X, num_classes).to(torch.float32)\n"),
    )),
    # -- q3 -----------------------------------------------------------------------------
    Example("rnn_sin_convertir_dtype",
            "RNNScratch usa el one-hot en float32, como D2L, sin convertirlo al dtype de los pesos: con los pesos "
            "float64 de la corrección cada forward da un error de dtypes (la pista lo explica). Fallan las pruebas "
            "de RNNScratch salvo los parámetros, las de predict y las dos de train_epoch en float64; el "
            "entrenamiento en float32 puntúa.", (
        Replace("RNNScratch",
                "inputs = one_hot(X.T, self.vocab_size).to(self.W_xh.dtype)  # (T, B, V): el bucle recorre el tiempo",
                "inputs = one_hot(X.T, self.vocab_size)  # (T, B, V), float32 como en D2L"),
    )),
    Example("logits_tiempo_primero",
            "RNNScratch apila los logits en el eje 0: devuelve (T, B, V). Las pruebas con B ≠ T fallan por la forma "
            "(la pista nombra el eje), la de B = T por los valores, la de B = T = 1 puntúa; predict (B = T = 1) "
            "puntúa; train_epoch empareja cada logit con otro objetivo y falla salvo con B = 1.", (
        Replace("RNNScratch", "return torch.stack(outputs, dim=1), state  # (B, T, V), (B, H)",
                "return torch.stack(outputs), state  # (T, B, V), (B, H)"),
    )),
    # -- q4 -----------------------------------------------------------------------------
    Example("perplejidad_eje_equivocado",
            "perplexity pasa los logits (B, T, V) tal cual a F.cross_entropy, que espera las clases en el eje 1: "
            "con T ≠ V da un error de tamaños, con T = V un número equivocado. Fallan las tres pruebas de perplexity.", (
        Replace("perplexity", "loss = F.cross_entropy(logits.reshape(-1, V), Y.reshape(-1))  # media sobre las B·T posiciones",
                "loss = F.cross_entropy(logits, Y)  # media sobre las posiciones"),
    )),
    Example("prediccion_sin_calentamiento",
            "predict solo pasa por el modelo el último carácter del prefijo: el estado olvida el resto. Fallan las "
            "dos pruebas con prefijos de varios caracteres; la de un carácter puntúa.", (
        Replace("predict",
                "    state, outputs = None, [vocab[prefix[0]]]\n"
                "    with torch.no_grad():\n"
                "        for i in range(len(prefix) + num_preds - 1):\n"
                "            X = torch.tensor([[outputs[-1]]], device=device)  # (1, 1): el último carácter\n"
                "            logits, state = model(X, state)\n"
                "            if i < len(prefix) - 1:  # calentamiento: el siguiente es del prefijo\n"
                "                outputs.append(vocab[prefix[i + 1]])\n"
                "            else:  # predicción: el más probable\n"
                "                outputs.append(int(logits[0, -1].argmax()))\n"
                "    return \"\".join(vocab.idx_to_token[i] for i in outputs)\n",
                "    with torch.no_grad():\n"
                "        X = torch.tensor([[vocab[prefix[-1]]]], device=device)  # el último carácter del prefijo\n"
                "        logits, state = model(X)\n"
                "        outputs = []\n"
                "        for _ in range(num_preds):\n"
                "            outputs.append(int(logits[0, -1].argmax()))\n"
                "            logits, state = model(torch.tensor([[outputs[-1]]], device=device), state)\n"
                "    return prefix + \"\".join(vocab.idx_to_token[i] for i in outputs)\n"),
    )),
    # -- q5 -----------------------------------------------------------------------------
    Example("gru_formula_d2l",
            "GRU con el candidato de D2L, tanh(X W_xh + (R ⊙ H) W_hh + b_h): la puerta de reinicio antes del "
            "producto. Solo pasan los parámetros; la pista explica la forma de nn.GRUCell.", (
        Replace("GRU", "H_tilde = torch.tanh(X @ self.W_xh + self.b_h + R * (H @ self.W_hh))",
                "H_tilde = torch.tanh(X @ self.W_xh + (R * H) @ self.W_hh + self.b_h)"),
    )),
    # -- q6 -----------------------------------------------------------------------------
    Example("atencion_escala_d",
            "scaled_dot_product_attention divide las puntuaciones por d en vez de por √d: fallan las cinco pruebas "
            "de la atención; causal_mask y padding_mask puntúan.", (
        Replace("scaled_dot_product_attention", "scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, Lq, Lk)",
                "scores = q @ k.transpose(-2, -1) / d  # (B, Lq, Lk)"),
    )),
    Example("dispositivo_cpu",
            "padding_mask crea torch.arange(num_keys) sin device: en CPU nota completa; en GPU compara un tensor de "
            "la CPU con valid_lens en la GPU y da un error de dispositivo (solo esa prueba).", (
        Replace("padding_mask", "positions = torch.arange(num_keys, device=valid_lens.device)  # (Lk,)",
                "positions = torch.arange(num_keys)  # (Lk,)"),
    )),
    # -- q7 -----------------------------------------------------------------------------
    Example("estado_sin_detach",
            "train_epoch pasa el estado de un lote al siguiente sin detach: el backward del segundo lote recorre el "
            "grafo ya liberado del primero y PyTorch da un error; la pista nombra detach. La pregunta 7 vale 0.", (
        Replace("train_epoch",
                "        if state is not None:\n"
                "            state = state.detach()  # mismos valores, sin el grafo del lote anterior\n", ""),
    )),
    # -- correct, broken -----------------------------------------------------------------
    Example("variantes_correctas",
            "Otras implementaciones correctas de casi todo (Counter.most_common, torch.eye, las filas de W_xh en vez "
            "del one-hot, la norma con torch.cat, log_softmax y gather, el prefijo de una vez, einsum y torch.where "
            "con -1e9, detach_ in situ): nota completa.", (
        Redefine("Vocab", VARIANT_VOCAB), Redefine("one_hot", VARIANT_ONE_HOT),
        Redefine("seq_data_iter_sequential", VARIANT_SEQ), Redefine("rnn_cell_forward", VARIANT_CELL),
        Redefine("RNNScratch", VARIANT_RNN), Redefine("clip_gradients", VARIANT_Q4.split("\n\n\ndef perplexity")[0]),
        Redefine("perplexity", "def perplexity" + VARIANT_Q4.split("\n\n\ndef perplexity")[1].split("\n\n\ndef predict")[0]),
        Redefine("predict", "def predict" + VARIANT_Q4.split("\n\n\ndef predict")[1]),
        Replace("GRU", "H = Z * H + (1 - Z) * H_tilde", "H = H_tilde + Z * (H - H_tilde)  # = Z ⊙ H + (1 − Z) ⊙ H̃"),
        Redefine("scaled_dot_product_attention", VARIANT_ATTENTION.split("\n\n\ndef causal_mask")[0]),
        Redefine("causal_mask", "def causal_mask" + VARIANT_ATTENTION.split("\n\n\ndef causal_mask")[1].split("\n\n\ndef padding_mask")[0]),
        Redefine("padding_mask", "def padding_mask" + VARIANT_ATTENTION.split("\n\n\ndef padding_mask")[1]),
        Redefine("train_epoch", VARIANT_TRAIN),
    )),
    Example("error_sintaxis",
            "Faltan los dos puntos en el for de GRU.forward: su celda no compila y la pregunta 5 vale 0; nada más "
            "depende de ella.", (
        Replace("GRU", "        for X in inputs:  # X: (B, D), un paso de tiempo\n",
                "        for X in inputs  # X: (B, D), un paso de tiempo\n"),
    )),
    Example("bucle_infinito",
            "Una celda con `while True: pass` tras la pregunta 3: se detiene a los 10 s, el proceso se reinicia, se "
            "repiten las celdas anteriores y el resto se ejecuta; no se pierde nada que puntúe.", (
        InsertCell("q3-check", "espera", "# a ver cuánto tarda en converger...\nwhile True:\n    pass\n"),
    )),
]


if __name__ == "__main__":
    write_examples(HERE, EXAMPLES_LIST)
