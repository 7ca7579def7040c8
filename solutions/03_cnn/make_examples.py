"""Build the bundled example submissions of 03_cnn from the solved notebook.

Run from the course root::

    .venv/bin/python solutions/03_cnn/make_examples.py

Each example is what one "student" hands in: the solved notebook as a
student would have it (the stub filled in: no ``### BEGIN/END SOLUTION``
markers, the release metadata), with a list of edits that plant one realistic
mistake (or a broken notebook). It is written to
``examples/<name>/<name>.ipynb``; its expected grade is in ``spec.toml``
(``[[examples]]``), and ``autograder validate 03_cnn`` checks it.

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

EXAMPLES_LIST = [
    # -- q1 -----------------------------------------------------------------------------
    Example("conv_pesos_traspuestos",
            "conv2d_forward lee los pesos como (C, F, KH, KW) (einsum 'cfab'): con C = F da otra salida, "
            "con C ≠ F un error de tamaños; toda la pregunta 1 falla.", (
        Replace("conv2d_forward", 'torch.einsum("ncab,fcab->nf", window, w)', 'torch.einsum("ncab,cfab->nf", window, w)'),
    )),
    Example("conv_sin_padding",
            "conv2d_forward no aplica el padding (ni al tamaño de salida ni a la entrada): solo pasa la prueba "
            "sin padding.", (
        Replace("conv2d_forward",
                "    if padding > 0:  # ceros alrededor: (N, C, H + 2P, W + 2P)\n"
                "        padded = x.new_zeros((N, C, H + 2 * padding, W + 2 * padding))\n"
                "        padded[:, :, padding:padding + H, padding:padding + W] = x\n"
                "        x = padded\n"
                "    H_out = (H + 2 * padding - KH) // stride + 1\n"
                "    W_out = (W + 2 * padding - KW) // stride + 1\n",
                "    H_out = (H - KH) // stride + 1\n"
                "    W_out = (W - KW) // stride + 1\n"),
    )),
    Example("usa_fconv2d",
            "conv2d_forward llama a F.conv2d en vez de programar la convolución: la pregunta 1 vale 0 "
            "(prohibido); el resto puntúa.", (
        Replace("conv2d_forward",
                "    out = x.new_zeros((N, F_out, H_out, W_out))\n"
                "    for i in range(H_out):\n"
                "        for j in range(W_out):\n"
                "            window = x[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW]  # (N, C, KH, KW)\n"
                "            out[:, :, i, j] = torch.einsum(\"ncab,fcab->nf\", window, w)  # (N, F)\n"
                "    return out + b.view(1, F_out, 1, 1)\n",
                "    return F.conv2d(x, w, b, stride=stride)  # ya con el padding hecho a mano\n"),
    )),
    # -- q2 -----------------------------------------------------------------------------
    Example("pool_paso_kernel",
            "maxpool2d_forward avanza kernel_size posiciones en vez de stride: con ventanas de 3 y paso 2 "
            "la salida tiene otra forma; con 2 y 2 no se nota.", (
        Replace("maxpool2d_forward",
                "    H_out = (H - k) // stride + 1\n    W_out = (W - k) // stride + 1\n",
                "    H_out = (H - k) // k + 1\n    W_out = (W - k) // k + 1\n"),
        Replace("maxpool2d_forward",
                "x[:, :, i * stride:i * stride + k, j * stride:j * stride + k]",
                "x[:, :, i * k:i * k + k, j * k:j * k + k]"),
    )),
    # -- q3 -----------------------------------------------------------------------------
    Example("lenet_sin_padding",
            "LeNet sin padding=2 en conv1 (y fc1 de 400 entradas): los pesos cargan y cada capa por separado "
            "funciona salvo conv1, que da 24×24; la red entera falla en fc1, así que lenet_shapes y train_cnn "
            "(que entrena esa LeNet) también.", (
        Replace("LeNet", "self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)  # (N, 6, 28, 28)",
                "self.conv1 = nn.Conv2d(1, 6, kernel_size=5)  # (N, 6, 28, 28)"),
    )),
    # -- q4 -----------------------------------------------------------------------------
    Example("residual_sin_relu_final",
            "Residual devuelve y + x sin la ReLU final; la ResNet y evaluate (que usa la ResNet) lo heredan.", (
        Replace("Residual", "return F.relu(y + x)", "return y + x"),
    )),
    Example("residual_sin_proyeccion",
            "Residual crea conv3 pero el forward no la usa: el atajo suma x sin proyectar (error de tamaños "
            "si cambian los canales o el stride, otra salida si no); la ResNet y evaluate lo heredan.", (
        Replace("Residual",
                "        if self.conv3 is not None:\n"
                "            x = self.conv3(x)  # el atajo, con los canales y el tamaño de y\n", ""),
    )),
    # -- q5 -----------------------------------------------------------------------------
    Example("cuenta_buffers",
            "count_parameters suma los numel de state_dict(): cuenta también running_mean, running_var y "
            "num_batches_tracked.", (
        Replace("count_parameters", "return sum(p.numel() for p in model.parameters())",
                "return sum(v.numel() for v in model.state_dict().values())"),
    )),
    # -- q6 -----------------------------------------------------------------------------
    Example("evaluate_sin_eval",
            "evaluate no llama a model.eval(): la BatchNorm normaliza con las estadísticas de cada lote y "
            "actualiza running_mean/running_var.", (
        Replace("evaluate", "    model.eval()  # BN con sus estadísticas acumuladas, sin actualizarlas\n", ""),
    )),
    Example("train_sin_zero_grad",
            "train_cnn no llama a optimizer.zero_grad(): los gradientes se acumulan y la LeNet no aprende.", (
        Replace("train_cnn", "            optimizer.zero_grad()\n", ""),
    )),
    # -- broken notebooks -------------------------------------------------------------------
    Example("error_sintaxis",
            "Falta los dos puntos en un for de maxpool2d_forward: su celda no compila y la pregunta 2 vale 0; "
            "nada más depende de ella.", (
        Replace("maxpool2d_forward", "        for j in range(W_out):\n            window = x[:, :, i * stride",
                "        for j in range(W_out)\n            window = x[:, :, i * stride"),
    )),
    Example("bucle_infinito",
            "Una celda de prueba con `while True: pass` tras la pregunta 3: se detiene a los 10 s, el proceso "
            "se reinicia y las demás celdas se ejecutan; no se pierde nada que puntúe.", (
        InsertCell("q3-check", "espera", "# espero a que se calienten los núcleos...\nwhile True:\n    pass\n"),
    )),
]


if __name__ == "__main__":
    write_examples(HERE, EXAMPLES_LIST)
