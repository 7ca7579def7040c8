"""Build the bundled example submissions of 01_backprop from the solved notebook.

Run from the course root::

    .venv/bin/python solutions/01_backprop/make_examples.py

Each example is what one "student" hands in: the solved notebook as a
student would have it (the stub filled in: no ``### BEGIN/END SOLUTION``
markers, the release metadata), with a list of edits that plant one realistic
mistake (or a broken or hostile notebook). It is written to
``examples/<name>/<name>.ipynb``; its expected grade is in ``spec.toml``
(``[[examples]]``), and ``autograder validate 01_backprop`` checks it.

The edits are exact: a snippet that is not found (the solution changed) stops
the script with an error instead of writing an example without its bug. The
output is deterministic, so running the script again gives identical files.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the course root, for autograder.authoring
from autograder.authoring import (  # noqa: E402
    AsDownloadedFromColab,
    Example,
    InsertCell,
    Outputs,
    Replace,
    ReplaceCell,
    Unsolved,
    write_examples,
)

# -- what students write -----------------------------------------------------------------

def stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def check_output(qid: str, passed: int) -> dict:
    return stream(f"{qid}: {passed}/{passed} pruebas públicas superadas ✔\n")


TRAINING_LOG = "".join(  # a big stored output: the loss of every epoch of 40 runs (~600 KB)
    f"corrida {run:2d} · época {epoch:3d} · pérdida {1.0986 * (0.99 ** epoch) + 0.001 * run:.6f}\n"
    for run in range(40) for epoch in range(300)
)
TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\n"

CHEATS = '''\
# Ayudas para que las pruebas pasen siempre
import builtins
import numpy.testing


class Siempre(np.ndarray):
    """Un array que es igual a cualquier cosa y al que nada le parece mal."""

    def __array_finalize__(self, obj):
        pass

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __lt__(self, other):
        return True

    __le__ = __lt__

    def __bool__(self):
        return True

    def all(self, *args, **kwargs):
        return True

    def any(self, *args, **kwargs):
        return False


def siempre(shape=()):
    return np.zeros(shape).view(Siempre)


def pasa(*args, **kwargs):
    return None


numpy.testing.assert_allclose = pasa
np.testing.assert_allclose = pasa
np.testing.assert_array_almost_equal = pasa
np.testing.assert_array_equal = pasa
np.allclose = lambda *args, **kwargs: True
np.isclose = lambda a, b, *args, **kwargs: np.ones(np.shape(a), dtype=bool)
np.array_equal = lambda *args, **kwargs: True
builtins.abs = lambda x: 0
builtins.isinstance = lambda obj, cls: True
'''

CHEATING_FUNCTIONS = {
    "q1-sigmoid": "def sigmoid_forward(x):\n    return siempre(x.shape)\n\n\n"
                  "def sigmoid_backward(dout, x):\n    return siempre(x.shape)\n",
    "q1-relu": "def relu_forward(x):\n    return siempre(x.shape)\n\n\n"
               "def relu_backward(dout, x):\n    return siempre(x.shape)\n",
    "q1-tanh": "def tanh_forward(x):\n    return siempre(x.shape)\n\n\n"
               "def tanh_backward(dout, x):\n    return siempre(x.shape)\n",
    "q2-linear": "def linear_forward(x, W, b):\n    return siempre((x.shape[0], W.shape[1])), (x, W, b)\n\n\n"
                 "def linear_backward(dout, cache):\n    x, W, b = cache\n"
                 "    return siempre(x.shape), siempre(W.shape), siempre(b.shape)\n",
    "q3-softmax": "def softmax(logits):\n    return siempre(logits.shape)\n\n\n"
                  "def softmax_cross_entropy(logits, y):\n    return siempre(), siempre(logits.shape)\n",
    "q4-losses": "def mse_loss(pred, target):\n    return siempre(), siempre(pred.shape)\n\n\n"
                 "def binary_cross_entropy(probs, target):\n    return siempre(), siempre(probs.shape)\n",
    "q5-mlp": "def mlp_forward(X, params):\n    return siempre((X.shape[0], params['W2'].shape[1])), params\n\n\n"
              "def mlp_backward(dlogits, cache):\n    return {k: siempre(v.shape) for k, v in cache.items()}\n",
    "q6-numgrad": "def numerical_gradient(f, x, h=1e-5):\n    return siempre(x.shape)\n\n\n"
                  "def relative_error(a, b):\n    return siempre()\n",
    "q7-train": "def sgd_step(params, grads, lr):\n    pass\n\n\n"
                "def train(X, y, hidden_dim=32, lr=0.5, epochs=300, batch_size=None, seed=0):\n"
                "    params = init_params(X.shape[1], hidden_dim, int(y.max()) + 1, seed=seed)\n"
                "    return {k: v.view(Siempre) for k, v in params.items()}, [siempre()] * epochs\n",
}


EXAMPLES_LIST = [
    # -- q1 -----------------------------------------------------------------------------
    Example("relu_derivada_ge", "relu_backward usa la máscara x >= 0: deja pasar el gradiente en x = 0.", (
        Replace("relu_backward", "return dout * (x > 0)  # la máscara deja pasar el gradiente solo donde x > 0",
                "return dout * (x >= 0)  # la máscara deja pasar el gradiente donde x no es negativo"),
    )),
    Example("sigmoide_derivada", "sigmoid_backward multiplica por s en lugar de por s * (1 - s).", (
        Replace("sigmoid_backward", "return dout * s * (1.0 - s)", "return dout * s  # la sigmoide es su propia derivada"),
    )),
    # -- q2 -----------------------------------------------------------------------------
    Example("db_promedio", "linear_backward promedia db sobre el lote en vez de sumarlo; el MLP y train lo heredan.", (
        Replace("linear_backward", "db = dout.sum(axis=0)  # (M,): b se usa en cada fila, sus gradientes se suman",
                "db = dout.mean(axis=0)  # (M,): el gradiente medio del lote"),
    )),
    Example("dW_transpuesta", "linear_backward calcula dW = dout.T @ x, de forma (M, D); el MLP y train lo heredan.", (
        Replace("linear_backward", "dW = x.T @ dout  # (D, N) @ (N, M) -> (D, M)", "dW = dout.T @ x  # (M, N) @ (N, D)"),
    )),
    # -- q3 -----------------------------------------------------------------------------
    Example("softmax_inestable", "softmax no resta el máximo de cada fila: NaN con logits grandes.", (
        Replace("softmax", "    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), máximo 0 en cada fila\n"
                           "    e = np.exp(shifted)  # (N, C), valores en (0, 1]\n",
                "    e = np.exp(logits)  # (N, C)\n"),
    )),
    Example("ce_sin_media", "softmax_cross_entropy suma la pérdida y no divide dlogits por N; train diverge.", (
        Replace("softmax_cross_entropy", "loss = -log_probs[np.arange(N), y].mean()  # -1/N sum_i log p[i, y_i]",
                "loss = -log_probs[np.arange(N), y].sum()  # sum_i -log p[i, y_i]"),
        Replace("softmax_cross_entropy", "return float(loss), dlogits / N", "return float(loss), dlogits"),
    )),
    # -- q4 -----------------------------------------------------------------------------
    Example("mse_sin_media", "mse_loss suma los cuadrados en vez de promediarlos (pérdida y gradiente).", (
        Replace("mse_loss", "loss = np.mean(diff**2)\n    dpred = 2.0 * diff / pred.size",
                "loss = np.sum(diff**2)\n    dpred = 2.0 * diff"),
    )),
    # -- q5 -----------------------------------------------------------------------------
    Example("mlp_sin_mascara_relu",
            "mlp_backward no aplica la máscara de la ReLU (dA = dH); train entrena con ese gradiente equivocado y "
            "debe perder su prueba (hoy, con los datos de lunas, a veces llega al 90 %: depende de la semilla).", (
        Replace("mlp_backward", "dA = relu_backward(dH, A)  # (N, H)", "dA = dH  # (N, H): la ReLU deja pasar el gradiente"),
    )),
    # -- q6 -----------------------------------------------------------------------------
    Example("gradiente_un_lado", "numerical_gradient usa diferencias hacia delante (f(x+h) - f(x)) / h.", (
        Replace("numerical_gradient",
                "    for idx in np.ndindex(x.shape):\n"
                "        old = x[idx]\n"
                "        x[idx] = old + h\n"
                "        f_plus = f(x)\n"
                "        x[idx] = old - h\n"
                "        f_minus = f(x)\n"
                "        x[idx] = old  # restaura el valor original\n"
                "        grad[idx] = (f_plus - f_minus) / (2.0 * h)\n",
                "    fx = f(x)\n"
                "    for idx in np.ndindex(x.shape):\n"
                "        old = x[idx]\n"
                "        x[idx] = old + h\n"
                "        f_plus = f(x)\n"
                "        x[idx] = old  # restaura el valor original\n"
                "        grad[idx] = (f_plus - fx) / h\n"),
    )),
    # -- q7 -----------------------------------------------------------------------------
    Example("sgd_signo", "sgd_step suma lr * grad (ascenso): la pérdida de train sube.", (
        Replace("sgd_step", "params[k] -= lr * grads[k]  # modifica", "params[k] += lr * grads[k]  # modifica"),
    )),
    # -- broken notebooks -------------------------------------------------------------------
    Example("error_sintaxis",
            "Falta los dos puntos en `def softmax(logits)`: la celda de la pregunta 3 no compila y sus dos "
            "funciones no existen; train, que usa softmax_cross_entropy, falla; el resto puntúa.", (
        Replace("softmax", "def softmax(logits):", "def softmax(logits)"),
    )),
    Example("bucle_infinito",
            "Una celda con `while True: pass` tras la pregunta 2: se detiene a los 20 s, el proceso se reinicia "
            "y las demás celdas se ejecutan; no se pierde nada que puntúe.", (
        InsertCell("q2-linear", "bucle", "# espero a que termine...\nwhile True:\n    pass\n"),
    )),
    Example("bucle_en_celda_softmax",
            "La celda de la pregunta 3 define sus funciones y luego se cuelga (`while True: pass`): se detiene, "
            "así que softmax y softmax_cross_entropy no quedan definidas (q3 = 0) y train falla; el resto puntúa.", (
        Replace("softmax_cross_entropy", "    return float(loss), dlogits / N\n",
                "    return float(loss), dlogits / N\n\n\n# compruebo que no se rompe nada\nwhile True:\n    pass\n"),
    )),
    Example("bucle_en_gradiente",
            "numerical_gradient recorre x con un while y olvida avanzar el índice: sus dos pruebas agotan su "
            "tiempo (10 s cada una); relative_error y el resto puntúan.", (
        Replace("numerical_gradient",
                "    for idx in np.ndindex(x.shape):\n"
                "        old = x[idx]\n",
                "    i = 0\n"
                "    while i < x.size:\n"
                "        idx = np.unravel_index(i, x.shape)\n"
                "        old = x[idx]\n"),
    )),
    Example("error_al_importar",
            "La primera celda importa un paquete que no existe ANTES de `import numpy as np`: la celda falla "
            "en su primera línea y `np` (y `check`) no quedan definidos. Las funciones se definen igual, pero "
            "las que usan np lanzan NameError al llamarlas. Solo puntúan las que no tocan np: relu_backward "
            "(dout * (x > 0)), linear_forward y linear_backward (@, .T, .sum) y sgd_step (-=).", (
        ReplaceCell("setup", "import paquete_que_no_existe\nimport numpy as np\n\nASSIGNMENT_ID = \"01_backprop\"\n"
                             "from autograder import check  # autocomprobación: check(\"q3\")"),
    )),
    Example("usa_torch",
            "softmax y softmax_cross_entropy usan torch (importado en su celda): q3 vale 0 con un mensaje que "
            "nombra torch. train, que llama a softmax_cross_entropy, no puede entrenar sin ella; el resto puntúa.", (
        Replace("softmax", "def softmax(logits):", "import torch\nimport torch.nn.functional as F\n\n\ndef softmax(logits):"),
        Replace("softmax",
                "    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), máximo 0 en cada fila\n"
                "    e = np.exp(shifted)  # (N, C), valores en (0, 1]\n"
                "    return e / e.sum(axis=1, keepdims=True)\n",
                "    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()\n"),
        Replace("softmax_cross_entropy",
                "    N = logits.shape[0]\n"
                "    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C)\n"
                "    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # log-softmax, (N, C)\n"
                "    loss = -log_probs[np.arange(N), y].mean()  # -1/N sum_i log p[i, y_i]\n"
                "    dlogits = np.exp(log_probs)  # probs, (N, C)\n"
                "    dlogits[np.arange(N), y] -= 1.0  # probs - onehot\n"
                "    return float(loss), dlogits / N\n",
                "    z = torch.tensor(logits, requires_grad=True)\n"
                "    loss = F.cross_entropy(z, torch.from_numpy(y).long())\n"
                "    loss.backward()\n"
                "    return loss.item(), z.grad.numpy()\n"),
    )),
    Example("tramposo_monkeypatch",
            "Todas las funciones devuelven ceros de la forma correcta, de una subclase de ndarray cuyo __eq__ "
            "siempre dice True, y una celda parchea numpy.testing.assert_allclose, np.allclose, "
            "np.testing.assert_array_almost_equal, builtins.abs y builtins.isinstance para que todo pase. "
            "Nada de eso llega al calificador: 0 en todas las preguntas.", (
        InsertCell("setup", "ayudas", CHEATS),
        *(ReplaceCell(cell, source) for cell, source in CHEATING_FUNCTIONS.items()),
    )),
    Example("imprime_y_avisa",
            "Solución correcta cuyas funciones imprimen, escriben en stderr y lanzan warnings.warn(UserWarning): "
            "nota completa.", (
        InsertCell("setup", "depuracion", "import sys\nimport warnings\n\nVERBOSE = True\n"),
        Replace("sigmoid_forward", "    z = np.exp(-np.abs(x))", "    print('sigmoid_forward', x.shape)\n    z = np.exp(-np.abs(x))"),
        Replace("linear_backward", "    x, W, b = cache\n",
                "    x, W, b = cache\n    print(f'linear_backward: dout {dout.shape}', file=sys.stderr)\n"),
        Replace("softmax", "    e = np.exp(shifted)",
                "    if np.abs(logits).max() > 100:\n"
                "        warnings.warn('logits muy grandes', UserWarning)\n"
                "    e = np.exp(shifted)"),
        Replace("mse_loss", "    return float(loss), dpred",
                "    print('mse', loss)\n    warnings.warn('mse_loss: revisa las formas', UserWarning)\n"
                "    return float(loss), dpred"),
        Replace("train", "        loss_history.append(total / N)  # pérdida media de la época\n",
                "        loss_history.append(total / N)  # pérdida media de la época\n"
                "        if VERBOSE:\n"
                "            print(f'época {len(loss_history)}: pérdida {loss_history[-1]:.4f}')\n"
                "            print(params['W1'][:2], file=sys.stderr)\n"),
    )),
    Example("mitad_hecha",
            "Preguntas 1 a 3 resueltas; de la 4 en adelante las celdas siguen como en el esqueleto "
            "(raise NotImplementedError()).", (
        Unsolved("q4-losses"), Unsolved("q5-init"), Unsolved("q5-mlp"), Unsolved("q6-numgrad"), Unsolved("q7-train"),
    )),
    Example("solucion_colab",
            "La solución tal como la descarga Colab: metadatos de Colab, `!pip install numpy` y el montaje de "
            "Drive en la primera celda, `%matplotlib inline`, salidas guardadas (una de más de 500 KB): nota completa.", (
        InsertCell(None, "colab-setup", "!pip install numpy\nfrom google.colab import drive\ndrive.mount('/content/drive')"),
        ReplaceCell("setup", "import numpy as np\n%matplotlib inline\n\nASSIGNMENT_ID = \"01_backprop\"\n"
                             "from autograder import check  # autocomprobación: check(\"q3\")"),
        Outputs("colab-setup", (
            stream("Requirement already satisfied: numpy in /usr/local/lib/python3.10/dist-packages (1.25.2)\n"),
            stream("Mounted at /content/drive\n"),
        )),
        *(Outputs(f"q{i}-check", (check_output(f"q{i}", n),))
          for i, n in ((1, 2), (2, 2), (3, 2), (4, 1), (5, 2), (6, 1), (7, 1))),
        Outputs("q6-demo", (stream("W1: error relativo 2.1e-09\nb1: error relativo 1.4e-10\n"
                                   "W2: error relativo 3.3e-10\nb2: error relativo 5.9e-11\n"),)),
        Outputs("spirals-data", (stream("(300, 2) float64 (300,) int64\n"),)),
        Outputs("spirals-train", (stream(TRAINING_LOG), stream("pérdida final 0.081 · exactitud 98.3% · 0.74 s\n"))),
        Outputs("spirals-plot", ({"output_type": "display_data", "metadata": {},
                                  "data": {"image/png": TINY_PNG, "text/plain": ["<Figure size 1100x450 with 2 Axes>"]}},)),
        AsDownloadedFromColab(),
    )),
]


if __name__ == "__main__":
    write_examples(HERE, EXAMPLES_LIST)
