"""Build the bundled example submissions of 02_ffnet from the solved notebook.

Run from the course root::

    .venv/bin/python solutions/02_ffnet/make_examples.py

Each example is what one "student" hands in: the solved notebook as a
student would have it (no ``### BEGIN/END SOLUTION`` markers, the release
metadata), with edits that plant one realistic mistake (or break the
notebook). It is written to ``examples/<name>/<name>.ipynb``; its expected
grade is in ``spec.toml`` (``[[examples]]``) and ``autograder validate
02_ffnet`` checks it.

Every edit is exact: a snippet that is not found exactly once (the solution
changed) stops the script instead of writing an example without its bug. The
output is deterministic.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the course root, for autograder.authoring
from autograder.authoring import Example, ReplaceInCell, write_examples  # noqa: E402

EXAMPLES_LIST = [
    # -- q1 ----------------------------------------------------------------------------------
    Example("peso_traspuesto",
            "Parte A con la disposición de nn.Linear: init_params crea W1 (H, D) y W2 (C, H), y forward usa "
            "X @ W1.T; con los pesos (entrada, salida) de la API forward falla (o, con pesos cuadrados, da otro "
            "resultado) y train_manual, que lo usa, también.", (
        ReplaceInCell("q1-code", "W1 = torch.randn(input_dim, hidden_dim, generator=g) * math.sqrt(2.0 / input_dim)  # (D, H)",
                "W1 = torch.randn(hidden_dim, input_dim, generator=g) * math.sqrt(2.0 / input_dim)  # (H, D) como nn.Linear"),
        ReplaceInCell("q1-code", "W2 = torch.randn(hidden_dim, num_classes, generator=g) * math.sqrt(2.0 / hidden_dim)  # (H, C)",
                "W2 = torch.randn(num_classes, hidden_dim, generator=g) * math.sqrt(2.0 / hidden_dim)  # (C, H)"),
        ReplaceInCell("q1-code", 'H = torch.relu(X @ params["W1"] + params["b1"])  # (N, D) @ (D, H) + (H,) -> (N, H)\n'
                           '    return H @ params["W2"] + params["b2"]  # (N, H) @ (H, C) + (C,) -> (N, C)',
                'H = torch.relu(X @ params["W1"].T + params["b1"])  # como nn.Linear: x W^T + b\n'
                '    return H @ params["W2"].T + params["b2"]'),
    )),
    Example("sin_relu",
            "forward de la Parte A olvida la ReLU (la red queda lineal); train_manual, que lo usa, entrena otra red.", (
        ReplaceInCell("q1-code", 'H = torch.relu(X @ params["W1"] + params["b1"])  # (N, D) @ (D, H) + (H,) -> (N, H)',
                'H = X @ params["W1"] + params["b1"]  # (N, H)'),
    )),
    Example("usa_nn_linear",
            "init_params toma la inicialización de dos nn.Linear (prohibido en la Parte A): la pregunta 1 vale 0 "
            "con un mensaje que nombra torch.nn.Linear; el resto puntúa.", (
        ReplaceInCell("q1-code",
                "    g = torch.Generator().manual_seed(seed)\n"
                "    W1 = torch.randn(input_dim, hidden_dim, generator=g) * math.sqrt(2.0 / input_dim)  # (D, H)\n"
                "    W2 = torch.randn(hidden_dim, num_classes, generator=g) * math.sqrt(2.0 / hidden_dim)  # (H, C)\n"
                '    params = {"W1": W1, "b1": torch.zeros(hidden_dim), "W2": W2, "b2": torch.zeros(num_classes)}\n',
                "    torch.manual_seed(seed)\n"
                "    capa1 = nn.Linear(input_dim, hidden_dim)  # la inicialización que ya trae PyTorch\n"
                "    capa2 = nn.Linear(hidden_dim, num_classes)\n"
                '    params = {"W1": capa1.weight.detach().T.clone(), "b1": torch.zeros(hidden_dim),\n'
                '              "W2": capa2.weight.detach().T.clone(), "b2": torch.zeros(num_classes)}\n'),
    )),
    # -- q2 ----------------------------------------------------------------------------------
    Example("perdida_sin_media",
            "cross_entropy suma las pérdidas del lote en vez de promediarlas (falta 1/N); train_manual, que la usa, "
            "da pasos N veces más largos.", (
        ReplaceInCell("q2-code", "return -log_probs[torch.arange(N, device=logits.device), y].mean()",
                "return -log_probs[torch.arange(N, device=logits.device), y].sum()"),
    )),
    # -- q3 ----------------------------------------------------------------------------------
    Example("paso_fuera_de_no_grad",
            "sgd_step sin torch.no_grad(): como p -= lr * p.grad daba error, escribe params[k] = p - lr * p.grad, "
            "que cambia cada parámetro por un tensor nuevo que ya no es una hoja; train_manual falla en el segundo lote.", (
        ReplaceInCell("q3-code",
                "    with torch.no_grad():\n"
                "        for p in params.values():\n"
                "            p -= lr * p.grad  # modifica el tensor del diccionario\n"
                "            p.grad.zero_()  # backward() acumula: el siguiente paso empieza de cero\n",
                "    for name, p in list(params.items()):\n"
                "        params[name] = p - lr * p.grad  # p -= lr * p.grad daba error\n"
                "        p.grad = None\n"),
    )),
    Example("bucle_infinito",
            "train_manual recorre los lotes con un while y olvida avanzar el índice: su prueba agota su tiempo (5 s) "
            "y el proceso se reinicia; el resto puntúa.", (
        ReplaceInCell("q3-code",
                "        for start in range(0, N, batch_size):\n",
                "        start = 0\n"
                "        while start < N:\n"),
    )),
    # -- q4 ----------------------------------------------------------------------------------
    Example("nombres_de_capas",
            "MLP llama a sus capas hidden y out en vez de fc1 y fc2: los pesos de referencia no se pueden cargar "
            "(el mensaje dice qué nombres faltan y cuáles sobran), así que fallan las pruebas de las preguntas 4 y 5.", (
        ReplaceInCell("q4-code", "self.fc1 = nn.Linear(input_dim, hidden_dim)  # weight (H, D)",
                "self.hidden = nn.Linear(input_dim, hidden_dim)"),
        ReplaceInCell("q4-code", "self.fc2 = nn.Linear(hidden_dim, num_classes)  # weight (C, H)",
                "self.out = nn.Linear(hidden_dim, num_classes)"),
        ReplaceInCell("q4-code", "h = F.relu(self.fc1(x))  # (N, H)", "h = F.relu(self.hidden(x))  # (N, H)"),
        ReplaceInCell("q4-code", "return self.fc2(h)  # (N, C) logits", "return self.out(h)  # (N, C) logits"),
    )),
    Example("dropout_en_eval",
            "MLP aplica F.dropout(h, self.p), cuyo training vale True por defecto: también apaga neuronas en modo "
            "evaluación, así que evaluate da otra exactitud.", (
        ReplaceInCell("q4-code", "self.dropout = nn.Dropout(dropout)  # sin parámetros: solo actúa en modo entrenamiento",
                "self.p = dropout"),
        ReplaceInCell("q4-code", "h = self.dropout(h)  # apaga neuronas solo con model.train()", "h = F.dropout(h, self.p)"),
    )),
    Example("dispositivo_cpu",
            "La ReLU de MLP se escribe con torch.where(h > 0, h, torch.zeros(h.shape)): torch.zeros crea el tensor en "
            "la CPU. En CPU todo pasa; en GPU cada llamada al modelo falla (preguntas 4 y 5).", (
        ReplaceInCell("q4-code", "h = F.relu(self.fc1(x))  # (N, H)",
                "h = self.fc1(x)  # (N, H)\n        h = torch.where(h > 0, h, torch.zeros(h.shape))  # ReLU"),
    )),
    # -- q5 ----------------------------------------------------------------------------------
    Example("olvida_zero_grad",
            "train_epoch no llama a optimizer.zero_grad(): los gradientes se acumulan de lote en lote, los pesos se "
            "alejan de la referencia y el entrenamiento en digits no aprende.", (
        ReplaceInCell("q5-code", "        optimizer.zero_grad()\n", ""),
    )),
    Example("modos_cruzados",
            "train_epoch llama a model.eval() y evaluate a model.train() (al revés): sin dropout los números del "
            "entrenamiento coinciden, pero los modos quedan mal y evaluate aplica dropout.", (
        ReplaceInCell("q5-code", "    model.train()\n    total, count = 0.0, 0\n", "    model.eval()\n    total, count = 0.0, 0\n"),
        ReplaceInCell("q5-code", "    model.eval()\n    correct, count = 0, 0\n", "    model.train()\n    correct, count = 0, 0\n"),
    )),
    # -- q6 ----------------------------------------------------------------------------------
    Example("parada_no_estricta",
            "EarlyStopping cuenta una pérdida igual a la mejor como mejora (<= en vez de <).", (
        ReplaceInCell("q6-code", "if val_loss < self.best:", "if val_loss <= self.best:"),
    )),
    Example("error_sintaxis",
            "Falta los dos puntos en `def step(self, val_loss)`: la celda de la pregunta 6 no compila y EarlyStopping "
            "no existe; el resto puntúa.", (
        ReplaceInCell("q6-code", "def step(self, val_loss):", "def step(self, val_loss)"),
    )),
]


if __name__ == "__main__":
    write_examples(HERE, EXAMPLES_LIST, markers_first=True)
