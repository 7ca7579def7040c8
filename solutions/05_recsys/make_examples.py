"""Build the bundled example submissions of 05_recsys from the solved notebook.

Run from the course root::

    .venv/bin/python solutions/05_recsys/make_examples.py

Each example is what one "student" hands in: the solved notebook as a
student would have it (the stub filled in: no ``### BEGIN/END SOLUTION``
markers, the release metadata), with a list of edits that plant one realistic
mistake (or a broken notebook, or a different but correct solution). It is
written to ``examples/<name>/<name>.ipynb``; its expected grade is in
``spec.toml`` (``[[examples]]``), and ``autograder validate 05_recsys``
checks it.

The edits are exact: a snippet that is not found (the solution changed) stops
the script with an error instead of writing an example without its bug. The
output is deterministic, so running the script again gives identical files.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the course root, for autograder.authoring
from autograder.authoring import Example, InsertCell, Replace, write_examples  # noqa: E402

# Solution blocks of the notebook, as they read once the markers are gone (for the correct variant).
SPLIT_LOOP = """    user = np.asarray(user)
    rng = np.random.default_rng(seed)
    order = np.argsort(user, kind="stable")  # las valoraciones de cada usuario, juntas
    starts = np.flatnonzero(np.diff(user[order])) + 1
    test = []
    for idx in np.split(order, starts):  # idx: los índices de un usuario
        n_test = int(test_fraction * len(idx))
        test.append(rng.choice(idx, size=n_test, replace=False))
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(len(user)), test_idx).astype(np.int64)  # el resto: ninguna en los dos
    return train_idx, test_idx
"""

EXAMPLES_LIST = [
    # -- q1 -----------------------------------------------------------------------------
    Example("reparto_global",
            "split_per_user reparte con una sola permutación global (int(0.2 · N) valoraciones al azar), no por "
            "usuario: el número de test de cada usuario no es int(0.2 · n_u).", (
        Replace("split_per_user", SPLIT_LOOP,
                "    rng = np.random.default_rng(seed)\n"
                "    perm = rng.permutation(len(user))\n"
                "    n_test = int(test_fraction * len(user))\n"
                "    return np.sort(perm[n_test:]), np.sort(perm[:n_test])\n"),
    )),
    Example("reparto_con_fuga",
            "split_per_user elige bien el test de cada usuario, pero devuelve como entrenamiento todas las "
            "valoraciones: las de test se filtran al entrenamiento.", (
        Replace("split_per_user",
                "    train_idx = np.setdiff1d(np.arange(len(user)), test_idx).astype(np.int64)  # el resto: ninguna en los dos\n",
                "    train_idx = np.arange(len(user))  # todas las valoraciones\n"),
    )),
    # -- q2 -----------------------------------------------------------------------------
    Example("sin_sesgos",
            "MatrixFactorization crea las tablas de sesgos pero ni forward ni predict_all los suman: predice "
            "mu + p_u · q_i.", (
        Replace("MatrixFactorization", "        return self.mu + b_u + b_i + dot\n", "        return self.mu + dot\n"),
        Replace("MatrixFactorization",
                "        return self.mu + scores + self.user_bias.weight + self.item_bias.weight.T  # + (U, 1) + (1, I)\n",
                "        return self.mu + scores\n"),
    )),
    Example("sesgo_sin_squeeze",
            "forward suma user_bias(user) e item_bias(item), de forma (B, 1), a los productos (B,): el "
            "broadcasting da una matriz (B, B). predict_all está bien.", (
        Replace("MatrixFactorization",
                "        b_u = self.user_bias(user).squeeze(-1)  # (B, 1) -> (B,)\n"
                "        b_i = self.item_bias(item).squeeze(-1)\n",
                "        b_u = self.user_bias(user)\n"
                "        b_i = self.item_bias(item)\n"),
    )),
    Example("sin_inicializar",
            "MatrixFactorization se queda con la inicialización de nn.Embedding, N(0, 1) en las cuatro tablas: "
            "el modelo es correcto pero entrena peor y no llega al RMSE de test pedido.", (
        Replace("MatrixFactorization",
                "        nn.init.normal_(self.P.weight, std=0.1)\n"
                "        nn.init.normal_(self.Q.weight, std=0.1)\n"
                "        nn.init.zeros_(self.user_bias.weight)\n"
                "        nn.init.zeros_(self.item_bias.weight)\n", ""),
    )),
    # -- q3 -----------------------------------------------------------------------------
    Example("mse_todas_las_celdas",
            "masked_mse promedia sobre todas las celdas (las no valoradas valen 0 en R); rmse y train_mf, que la "
            "usan, fallan con ella.", (
        Replace("masked_mse", "    errors = (pred - R)[mask]  # solo las observadas: (|Ω|,)\n",
                "    errors = pred - R\n"),
    )),
    Example("l2_sin_sesgos",
            "l2_penalty regulariza P y Q pero no los sesgos, que Adam(weight_decay=...) sí encoge.", (
        Replace("l2_penalty", "    return weight_decay / 2 * sum((p ** 2).sum() for p in model.parameters())\n",
                "    return weight_decay / 2 * ((model.P.weight ** 2).sum() + (model.Q.weight ** 2).sum())\n"),
    )),
    # -- q4 -----------------------------------------------------------------------------
    Example("adam_sin_weight_decay",
            "train_mf crea Adam sin weight_decay: los pasos no coinciden con la referencia y el modelo memoriza "
            "(RMSE de test mucho peor).", (
        Replace("train_mf", "torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)",
                "torch.optim.Adam(model.parameters(), lr=lr)"),
    )),
    Example("train_sin_zero_grad",
            "train_mf no llama a optimizer.zero_grad(): los gradientes se acumulan paso a paso.", (
        Replace("train_mf", "        optimizer.zero_grad()\n", ""),
    )),
    # -- q5 -----------------------------------------------------------------------------
    Example("bpr_inestable",
            "bpr_loss calcula -log(sigmoid(pos - neg)): con diferencias muy negativas sigmoid da 0 y la pérdida "
            "es infinita.", (
        Replace("bpr_loss", "    return -F.logsigmoid(pos_scores - neg_scores).mean()\n",
                "    return -torch.log(torch.sigmoid(pos_scores - neg_scores)).mean()\n"),
    )),
    Example("negativos_con_positivos",
            "sample_negatives saca ítems al azar entre todos, sin descartar los positivos del usuario.", (
        Replace("sample_negatives",
                "    bad = pos_mask[users, neg]  # los que cayeron en un positivo\n"
                "    while bad.any():\n"
                "        neg[bad] = torch.randint(0, num_items, (int(bad.sum()),), device=pos_mask.device)\n"
                "        bad = pos_mask[users, neg]\n", ""),
    )),
    # -- q6 -----------------------------------------------------------------------------
    Example("hit_k_menos_uno",
            "hit_rate_at_k cuenta rank < k: el ítem de test en la posición k no cuenta (error de uno).", (
        Replace("hit_rate_at_k", "    return (rank <= k).double().mean().item()\n",
                "    return (rank < k).double().mean().item()\n"),
    )),
    Example("empates_a_favor",
            "rank_of_test_items cuenta solo los candidatos con puntuación estrictamente mayor (+1): los empates "
            "cuentan a favor del modelo. Las pruebas sin empates pasan; las de empates, no.", (
        Replace("rank_of_test_items", "    ahead = scores >= own  # (U, I): delante o empatados (los empates, en contra)\n",
                "    ahead = scores > own  # (U, I): los que van delante\n"),
        Replace("rank_of_test_items", "    return ahead.sum(dim=1)  # (U,), >= 1\n",
                "    return ahead.sum(dim=1) + 1  # (U,), >= 1\n"),
    )),
    Example("ndcg_log_rank",
            "ndcg_at_k usa 1 / log2(rank) con rank desde 1: infinito en la primera posición.", (
        Replace("ndcg_at_k", "1.0 / torch.log2(rank + 1.0)", "1.0 / torch.log2(rank)"),
    )),
    # -- correct, but written differently -----------------------------------------------------
    Example("solucion_alternativa",
            "Otra solución correcta: tablas con sparse=True y forward indexando .weight, predict_all a través de "
            "forward, MSE multiplicando por la máscara, rmse con math.sqrt, negativos con torch.multinomial y "
            "rank con masked_fill. Puntúa 100.", (
        Replace("MatrixFactorization", "        self.P = nn.Embedding(num_users, num_factors)  # (U, k): gustos de cada usuario\n"
                "        self.Q = nn.Embedding(num_items, num_factors)  # (I, k): rasgos de cada ítem\n"
                "        self.user_bias = nn.Embedding(num_users, 1)  # (U, 1)\n"
                "        self.item_bias = nn.Embedding(num_items, 1)  # (I, 1)\n",
                "        self.P = nn.Embedding(num_users, num_factors, sparse=True)\n"
                "        self.Q = nn.Embedding(num_items, num_factors, sparse=True)\n"
                "        self.user_bias = nn.Embedding(num_users, 1, sparse=True)\n"
                "        self.item_bias = nn.Embedding(num_items, 1, sparse=True)\n"),
        Replace("MatrixFactorization",
                "        dot = (self.P(user) * self.Q(item)).sum(dim=-1)  # (B, k) -> (B,)\n"
                "        b_u = self.user_bias(user).squeeze(-1)  # (B, 1) -> (B,)\n"
                "        b_i = self.item_bias(item).squeeze(-1)\n"
                "        return self.mu + b_u + b_i + dot\n",
                "        dot = torch.einsum(\"bk,bk->b\", self.P.weight[user], self.Q.weight[item])\n"
                "        return dot + self.user_bias.weight[user, 0] + self.item_bias.weight[item, 0] + self.mu\n"),
        Replace("MatrixFactorization",
                "        scores = self.P.weight @ self.Q.weight.T  # (U, k) @ (k, I) -> (U, I)\n"
                "        return self.mu + scores + self.user_bias.weight + self.item_bias.weight.T  # + (U, 1) + (1, I)\n",
                "        U, I = self.P.num_embeddings, self.Q.num_embeddings\n"
                "        users = torch.arange(U, device=self.P.weight.device).repeat_interleave(I)\n"
                "        items = torch.arange(I, device=self.P.weight.device).repeat(U)\n"
                "        return self.forward(users, items).view(U, I)\n"),
        Replace("masked_mse", "    errors = (pred - R)[mask]  # solo las observadas: (|Ω|,)\n"
                "    return (errors ** 2).mean()\n",
                "    return ((pred - R) ** 2 * mask).sum() / mask.sum()\n"),
        Replace("rmse", "    with torch.no_grad():\n        return masked_mse(pred, R, mask).sqrt().item()\n",
                "    return math.sqrt(masked_mse(pred, R, mask).item())\n"),
        Replace("sample_negatives",
                "    num_items = pos_mask.shape[1]\n"
                "    neg = torch.randint(0, num_items, users.shape, device=pos_mask.device)\n"
                "    bad = pos_mask[users, neg]  # los que cayeron en un positivo\n"
                "    while bad.any():\n"
                "        neg[bad] = torch.randint(0, num_items, (int(bad.sum()),), device=pos_mask.device)\n"
                "        bad = pos_mask[users, neg]\n"
                "    return neg\n",
                "    weights = (~pos_mask[users]).float()  # (B, I): 1 en los candidatos\n"
                "    return torch.multinomial(weights, 1).squeeze(1)\n"),
        Replace("rank_of_test_items",
                "    own = scores.gather(1, test_items.view(-1, 1))  # (U, 1)\n"
                "    ahead = scores >= own  # (U, I): delante o empatados (los empates, en contra)\n"
                "    if exclude is not None:\n"
                "        ahead = ahead & ~exclude\n"
                "    return ahead.sum(dim=1)  # (U,), >= 1\n",
                "    if exclude is not None:\n"
                "        scores = scores.masked_fill(exclude, -math.inf)\n"
                "    own = scores[torch.arange(len(test_items), device=scores.device), test_items]\n"
                "    return (scores >= own[:, None]).sum(dim=1)\n"),
        InsertCell("setup", "imports-extra", "import math\n"),
    )),
    # -- broken notebooks -------------------------------------------------------------------
    Example("error_sintaxis",
            "Falta un paréntesis en bpr_loss: la celda de la pregunta 5 no compila y la pregunta 5 vale 0; nada "
            "más depende de ella.", (
        Replace("bpr_loss", "    return -F.logsigmoid(pos_scores - neg_scores).mean()\n",
                "    return -F.logsigmoid(pos_scores - neg_scores.mean()\n"),
    )),
    Example("bucle_infinito",
            "Una celda con `while True: pass` tras la pregunta 2: se detiene a los 10 s, el proceso se reinicia, "
            "se repiten las celdas anteriores y el resto se ejecuta; no se pierde nada que puntúe.", (
        InsertCell("q2-check", "espera", "# espero a que termine de entrenar en segundo plano...\nwhile True:\n    pass\n"),
    )),
]


if __name__ == "__main__":
    write_examples(HERE, EXAMPLES_LIST, markers_first=True)
