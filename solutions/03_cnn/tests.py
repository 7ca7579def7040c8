"""Tests of 03_cnn (instructor-only): fresh inputs, the reference's answers, known bugs.

Each ``build`` runs in the trusted grader: it draws inputs and weights from
``rng`` (new for every batch), computes the expected answer with
``reference_impl.cnn`` in float64 on the CPU, and lists the bug patterns whose
answers it would recognise. Module checks build the *student's* module in the
sandbox, load the reference's weights by the prescribed parameter names
(``@load_state_dict``), and send back outputs, gradients and BatchNorm
statistics. Checks marked ``public`` are also released, built once with a
fixed seed, for the students' self-check.
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.checks import BugPattern, Call, Case, Check, Probe, Ref, Tolerance
from autograder.compare import Mismatch
from autograder.data.shapes import make_shapes
from reference_impl import cnn as ref
from reference_impl import cnn_bugs as bug

# float32 arithmetic (a student's torch.zeros buffer, or a float32 model) passes; every named bug is
# off by O(1) (tests/test_tolerances_cnn.py).
CNN = Tolerance(rtol=1e-4, atol=1e-5)
# float64 modules (weights loaded as float64) compared with the float64 reference: BN divides by
# sqrt(var + eps), so allow a little more than FLOAT64 for a different but valid summation order.
MODULE = Tolerance(rtol=1e-6, atol=1e-8)
# evaluate() runs a float32 model: its loss is a float32 mean of cross-entropies.
EVAL = Tolerance(rtol=1e-4, atol=1e-5)

TRAIN = {"n_train": 960, "n_test": 400, "epochs": 3, "lr": 3e-3, "batch_size": 16}
TRAIN_MARGIN = 0.2  # a correct loop from another init and order: gap to the reference >= -0.10 over 30 batches (sd 0.04)


def _msg(es: str, en: str) -> dict[str, str]:
    return {"es": es, "en": en}


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(array)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _names(*names: str) -> dict[str, str]:
    return {f"[{i}]": n for i, n in enumerate(names)}


# -- weights ------------------------------------------------------------------------

def random_state(module: torch.nn.Module, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random state for ``module`` (every parameter and BN buffer), float64, in state_dict order.

    Weights ~ N(0, 1/fan_in) keep activations O(1); BN gets non-trivial affine parameters and running
    statistics, so that train mode (batch statistics) and eval mode (running ones) differ clearly.
    """
    state = {}
    for name, value in module.state_dict().items():
        shape = tuple(value.shape)
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            state[name] = np.asarray(int(rng.integers(0, 50)), dtype=np.int64)
        elif leaf == "running_mean":
            state[name] = rng.normal(0.0, 0.3, size=shape)
        elif leaf == "running_var":
            state[name] = rng.uniform(0.5, 2.0, size=shape)
        elif leaf == "weight" and len(shape) == 1:  # BN scale
            state[name] = rng.uniform(0.5, 1.5, size=shape)
        elif leaf == "weight":
            fan_in = int(np.prod(shape[1:]))
            state[name] = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=shape)
        else:  # biases
            state[name] = rng.normal(0.0, 0.2, size=shape)
    return state


def loaded(module: torch.nn.Module, state: dict[str, np.ndarray], dtype=torch.float64) -> torch.nn.Module:
    module = module.to(dtype)
    module.load_state_dict({k: _t(v) for k, v in state.items()})
    return module


def state_arrays(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: _np(v) for k, v in module.state_dict().items()}


def module_probe(constructor: str, args: tuple, state: dict, x: np.ndarray, *, mode: str = "train",
                 upstream: np.ndarray | None = None, kwargs: dict | None = None) -> Probe:
    """Build the student's module, load ``state``, set ``mode``, forward ``x`` (float64), maybe backward.

    Sends back the output, then (with ``upstream``) dL/dx and every parameter's gradient, and finally
    the BatchNorm buffers after the forward, so a train-mode forward's statistics are compared too.
    """
    steps = [Call("m", constructor, args, kwargs or {}), Call("load", "@load_state_dict", (Ref("m"), state)),
             Call("mode", "@method", (Ref("m"), mode)),
             Call("x", "@tensor", (x,), {"requires_grad": upstream is not None}),
             Call("out", "@call", (Ref("m"), Ref("x")))]
    outputs: list = [Ref("out")]
    if upstream is not None:
        steps += [Call("back", "@backward", (Ref("out"), upstream)), Call("gx", "@grad", (Ref("x"),)),
                  Call("gp", "@param_grads", (Ref("m"),))]
        outputs += [Ref("gx"), Ref("gp")]
    steps.append(Call("after", "@state_dict", (Ref("m"),)))
    outputs.append(Ref("after"))
    return Probe(steps, outputs=tuple(outputs))


def reference_run(module: torch.nn.Module, x: np.ndarray, *, mode: str = "train", upstream: np.ndarray | None = None):
    """What :func:`module_probe` expects: the same steps on the reference module (float64, CPU)."""
    module.train(mode == "train")
    xt = _t(x).clone().requires_grad_(upstream is not None)
    out = module(xt)
    expected: list = [_np(out)]
    if upstream is not None:
        out.backward(_t(upstream))
        expected += [_np(xt.grad), {n: _np(p.grad) for n, p in module.named_parameters()}]
    expected.append(state_arrays(module))
    return tuple(expected)


def module_names(upstream: bool) -> dict[str, str]:
    return _names("out", "dL/dx", "grads", "state_dict") if upstream else _names("out", "state_dict")


def _forward_only(module: torch.nn.Module, x: np.ndarray, mode: str = "train") -> np.ndarray:
    module.train(mode == "train")
    with torch.no_grad():
        return _np(module(_t(x)))


# -- q1: convolution ----------------------------------------------------------------------

NO_BIAS = _msg("Falta sumar el sesgo b[f] a cada canal de salida f.", "The bias b[f] is not added to each output channel f.")
FLIPPED = _msg("Tu salida es una convolución con el kernel volteado: en deep learning la «convolución» es una "
               "correlación cruzada, out[n, f, i, j] = Σ x[n, c, i·S + a, j·S + b] · w[f, c, a, b], sin voltear w.",
               "Your output is a convolution with the kernel flipped: in deep learning a 'convolution' is a "
               "cross-correlation, out[n, f, i, j] = Σ x[n, c, i·S + a, j·S + b] · w[f, c, a, b], w not flipped.")
CHANNELS_SWAPPED = _msg("Usas w como si tuviera forma (C, F, KH, KW): la disposición pedida es (F, C, KH, KW), el canal "
                        "de salida primero (w[f, c], no w[c, f]).",
                        "You use w as if it were (C, F, KH, KW): the required layout is (F, C, KH, KW), output channel "
                        "first (w[f, c], not w[c, f]).")
KERNEL_TRANSPOSED = _msg("El kernel está traspuesto: w[f, c, a, b] multiplica la fila i·S + a y la columna j·S + b "
                         "(KH recorre filas, KW columnas).",
                         "The kernel is transposed: w[f, c, a, b] multiplies row i·S + a and column j·S + b "
                         "(KH runs over rows, KW over columns).")
PADDING_IGNORED = _msg("Parece que no aplicas el padding: rellena con `padding` ceros por cada lado de H y W antes de "
                       "deslizar el kernel, H' = (H + 2P − KH) // S + 1.",
                       "Looks like the padding is ignored: add `padding` zeros on each side of H and W before sliding "
                       "the kernel, H' = (H + 2P − KH) // S + 1.")
STRIDE_IGNORED = _msg("Parece que no usas el stride: la ventana de la salida (i, j) empieza en la fila i·S y la columna "
                      "j·S, H' = (H + 2P − KH) // S + 1.",
                      "Looks like the stride is ignored: output (i, j)'s window starts at row i·S and column j·S, "
                      "H' = (H + 2P − KH) // S + 1.")


CONV_SIZE = _msg("La salida no tiene la forma esperada (N, F, H', W'), con H' = (H + 2P − KH) // S + 1 y "
                 "W' = (W + 2P − KW) // S + 1: revisa el padding P (ceros a cada lado), el stride S y el + 1.",
                 "The output does not have the expected shape (N, F, H', W'), with H' = (H + 2P − KH) // S + 1 and "
                 "W' = (W + 2P − KW) // S + 1: check the padding P (zeros on each side), the stride S and the + 1.")


def _conv_inputs(rng: np.random.Generator, *, n=None, c=None, f=None, kh=None, kw=None, h=None, w=None):
    c = c or int(rng.integers(2, 4))
    if n is None:  # N != C (2 and 3): the batch and channel axes cannot be mixed up unnoticed
        n = 5 - c if c in (2, 3) else int(rng.integers(2, 4))
    f = f or int(rng.integers(2, 5))
    kh = kh or int(rng.integers(2, 4))
    kw = kw or int(rng.integers(2, 4))
    h = h or int(rng.integers(5, 9))
    w = w or int(rng.integers(5, 9))
    x = rng.normal(size=(n, c, h, w))
    weight = rng.normal(size=(f, c, kh, kw)) / np.sqrt(c * kh * kw)
    b = rng.normal(size=(f,))
    return x, weight, b


def _conv_patterns(x, w, b, stride, padding) -> list[BugPattern]:
    X, W, B = _t(x), _t(w), _t(b)
    patterns = [
        BugPattern("matches", NO_BIAS, data=_np(bug.conv2d_no_bias(X, W, B, stride, padding)), output="[0]"),
        BugPattern("matches", FLIPPED, data=_np(bug.conv2d_flipped(X, W, B, stride, padding)), output="[0]"),
    ]
    if w.shape[0] == w.shape[1]:
        patterns.append(BugPattern("matches", CHANNELS_SWAPPED,
                                   data=_np(bug.conv2d_weight_channels_swapped(X, W, B, stride, padding)), output="[0]"))
    if w.shape[2] == w.shape[3]:
        patterns.append(BugPattern("matches", KERNEL_TRANSPOSED,
                                   data=_np(bug.conv2d_kernel_transposed(X, W, B, stride, padding)), output="[0]"))
    if padding:
        patterns.append(BugPattern("matches", PADDING_IGNORED,
                                   data=_np(bug.conv2d_padding_ignored(X, W, B, stride, padding)), output="[0]"))
    if stride > 1:
        patterns.append(BugPattern("matches", STRIDE_IGNORED,
                                   data=_np(bug.conv2d_stride_ignored(X, W, B, stride, padding)), output="[0]"))
    patterns.append(BugPattern("shape", CONV_SIZE, output="[0]"))
    return patterns


def _conv_case(x, w, b, stride: int, padding: int, backward: bool, rng: np.random.Generator) -> Case:
    kwargs = {"stride": stride, "padding": padding}
    X, W, B = (_t(a).clone().requires_grad_(backward) for a in (x, w, b))
    out = ref.conv2d_forward(X, W, B, **kwargs)
    patterns = _conv_patterns(x, w, b, stride, padding)
    if not backward:
        steps = [Call(name, "@tensor", (a,)) for name, a in (("x", x), ("w", w), ("b", b))]
        steps.append(Call("out", "conv2d_forward", (Ref("x"), Ref("w"), Ref("b")), kwargs))
        return Case(Probe(steps, outputs=(Ref("out"),)), (_np(out),), CNN, output_names=_names("out"), patterns=patterns)
    upstream = rng.normal(size=tuple(out.shape))
    out.backward(_t(upstream))
    steps = [Call(name, "@tensor", (a,), {"requires_grad": True}) for name, a in (("x", x), ("w", w), ("b", b))]
    steps += [Call("out", "conv2d_forward", (Ref("x"), Ref("w"), Ref("b")), kwargs),
              Call("back", "@backward", (Ref("out"), upstream)),
              Call("gx", "@grad", (Ref("x"),)), Call("gw", "@grad", (Ref("w"),)), Call("gb", "@grad", (Ref("b"),))]
    expected = (_np(out), _np(X.grad), _np(W.grad), _np(B.grad))
    return Case(Probe(steps, outputs=(Ref("out"), Ref("gx"), Ref("gw"), Ref("gb"))), expected, CNN,
                output_names=_names("out", "dL/dx", "dL/dw", "dL/db"), patterns=patterns)


def build_conv_basic(rng: np.random.Generator) -> Case:
    x, w, b = _conv_inputs(rng)
    return _conv_case(x, w, b, 1, 0, False, rng)


def _build_conv_stride_padding(backward: bool):
    def build(rng: np.random.Generator) -> Case:
        # odd, non-square sizes, a non-square kernel, stride 2 and padding 1 or 2
        x, w, b = _conv_inputs(rng, h=int(rng.choice([7, 9])), w=int(rng.choice([5, 8])), kh=3, kw=2)
        return _conv_case(x, w, b, 2, int(rng.integers(1, 3)), backward, rng)
    return build


def build_conv_square(rng: np.random.Generator) -> Case:
    # C == F and KH == KW: a weight read as (C, F, KH, KW), or a transposed kernel, gives an answer (not an error)
    c = int(rng.integers(2, 4))
    x, w, b = _conv_inputs(rng, c=c, f=c, kh=3, kw=3)
    return _conv_case(x, w, b, 1, 2, False, rng)


def build_conv_backward(rng: np.random.Generator) -> Case:
    # stride and padding fixed per check (here 1 and 1), so that a bug in one loses the same checks in every batch
    x, w, b = _conv_inputs(rng)
    return _conv_case(x, w, b, 1, 1, True, rng)


def build_conv_single(rng: np.random.Generator) -> Case:
    # one image, one input channel, odd size, stride 2
    x, w, b = _conv_inputs(rng, n=1, c=1, h=int(rng.choice([5, 7])), w=int(rng.choice([5, 7])), kh=3, kw=3)
    return _conv_case(x, w, b, 2, 1, True, rng)


# -- q2: max pooling ----------------------------------------------------------------------

AVERAGE = _msg("Tu salida es la *media* de cada ventana: el max pooling se queda con el máximo.",
               "Your output is the *mean* of each window: max pooling keeps the maximum.")
STRIDE_IS_KERNEL = _msg("Usas kernel_size como paso: la ventana (i, j) empieza en la fila i·stride y la columna "
                        "j·stride, y H' = (H − k) // stride + 1.",
                        "You use kernel_size as the step: window (i, j) starts at row i·stride and column j·stride, "
                        "and H' = (H − k) // stride + 1.")


POOL_STRIDE_IGNORED = _msg("Parece que no usas el stride: tu ventana avanza de 1 en 1; la ventana (i, j) empieza en la "
                          "fila i·stride y la columna j·stride.",
                          "Looks like the stride is ignored: your window moves one step at a time; window (i, j) "
                          "starts at row i·stride and column j·stride.")
POOL_SIZE = _msg("La salida no tiene la forma esperada (N, C, H', W'), con H' = (H − k) // stride + 1 y "
                 "W' = (W − k) // stride + 1 (sin padding: una ventana incompleta se descarta).",
                 "The output does not have the expected shape (N, C, H', W'), with H' = (H − k) // stride + 1 and "
                 "W' = (W − k) // stride + 1 (no padding: an incomplete window is dropped).")


def _pool_case(rng: np.random.Generator, shape: tuple, kernel_size: int | None, stride: int | None, backward: bool) -> Case:
    x = rng.normal(size=shape)
    kwargs = {k: v for k, v in (("kernel_size", kernel_size), ("stride", stride)) if v is not None}
    k, s = kernel_size or 2, stride or 2
    X = _t(x).clone().requires_grad_(backward)
    out = ref.maxpool2d_forward(X, k, s)
    patterns = [BugPattern("matches", AVERAGE, data=_np(bug.maxpool2d_average(_t(x), k, s)), output="[0]")]
    if k != s:
        patterns.append(BugPattern("matches", STRIDE_IS_KERNEL, data=_np(bug.maxpool2d_stride_is_kernel(_t(x), k, s)),
                                   output="[0]"))
    if s != 1:
        patterns.append(BugPattern("matches", POOL_STRIDE_IGNORED, data=_np(ref.maxpool2d_forward(_t(x), k, 1)),
                                   output="[0]"))
    patterns.append(BugPattern("shape", POOL_SIZE, output="[0]"))
    steps = [Call("x", "@tensor", (x,), {"requires_grad": backward}),
             Call("out", "maxpool2d_forward", (Ref("x"),), kwargs)]
    if not backward:
        return Case(Probe(steps, outputs=(Ref("out"),)), (_np(out),), CNN, output_names=_names("out"), patterns=patterns)
    upstream = rng.normal(size=tuple(out.shape))
    out.backward(_t(upstream))
    steps += [Call("back", "@backward", (Ref("out"), upstream)), Call("gx", "@grad", (Ref("x"),))]
    return Case(Probe(steps, outputs=(Ref("out"), Ref("gx"))), (_np(out), _np(X.grad)), CNN,
                output_names=_names("out", "dL/dx"), patterns=patterns)


def build_pool_default(rng: np.random.Generator) -> Case:
    size = int(rng.choice([4, 6, 8]))
    return _pool_case(rng, (2, 3, size, size), None, None, False)


def build_pool_backward(rng: np.random.Generator) -> Case:
    return _pool_case(rng, (int(rng.integers(2, 4)), 2, int(rng.choice([6, 8])), int(rng.choice([4, 6]))), 2, 2, True)


def build_pool_overlap(rng: np.random.Generator) -> Case:
    # forward only: an output of the wrong shape is reported as such, with its hint (a backward with the
    # expected shape's upstream gradient would fail first, with torch's message)
    return _pool_case(rng, (2, 2, int(rng.choice([7, 9])), int(rng.choice([6, 9]))), 3, 2, False)


def build_pool_odd(rng: np.random.Generator) -> Case:
    # one image, one channel, odd sizes: the last row/column that does not fill a window is dropped (floor)
    return _pool_case(rng, (1, 1, int(rng.choice([5, 7])), int(rng.choice([5, 9]))), 2, 2, True)


# -- q3: LeNet ----------------------------------------------------------------------------

LENET_PADDING = _msg("conv1 devuelve 24×24: le falta padding=2 (con un kernel 5×5, padding 2 conserva los 28×28 de la "
                     "entrada; después de los dos max pooling quedan 16·5·5 = 400 rasgos para fc1).",
                     "conv1 gives 24×24: it needs padding=2 (with a 5×5 kernel, padding 2 keeps the input's 28×28; "
                     "after the two max poolings fc1 gets 16·5·5 = 400 features).")


def _lenet(rng: np.random.Generator):
    model = ref.LeNet()
    state = random_state(model, rng)
    return loaded(model, state), state


def _images(rng: np.random.Generator, n: int, size: int = 28, channels: int = 1) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=(n, channels, size, size))


def build_lenet_parameters(rng: np.random.Generator) -> Case:
    _, state = _lenet(rng)
    probe = Probe([Call("m", "LeNet", ()), Call("load", "@load_state_dict", (Ref("m"), state)),
                   Call("after", "@state_dict", (Ref("m"),))], outputs=Ref("after"))
    return Case(probe, state, MODULE)


def build_lenet_layers(rng: np.random.Generator) -> Case:
    """Every prescribed layer on its own, fed the reference's input for it: a wrong layer is named, not hidden."""
    model, state = _lenet(rng)
    x = _t(_images(rng, int(rng.integers(2, 4))))
    inputs, expected = {}, {}
    with torch.no_grad():
        h = x
        for name, layer in model.named_children():
            inputs[name] = _np(h)
            h = layer(h)
            expected[name] = _np(h)
    steps = [Call("m", "LeNet", ()), Call("load", "@load_state_dict", (Ref("m"), state))]
    for name in ref.LENET_LAYERS:
        steps += [Call(f"layer_{name}", "@getattr", (Ref("m"), name)),
                  Call(f"in_{name}", "@tensor", (inputs[name],)),
                  Call(f"out_{name}", "@call", (Ref(f"layer_{name}"), Ref(f"in_{name}")))]
    outputs = {name: Ref(f"out_{name}") for name in ref.LENET_LAYERS}
    with torch.no_grad():
        no_padding = _np(bug.lenet_conv1_no_padding(model, x))
    return Case(Probe(steps, outputs=outputs), expected, MODULE,
                patterns=[BugPattern("matches", LENET_PADDING, data=no_padding, output="['conv1']")])


def skipped_step_patterns(steps: list[tuple[str, object]], x: np.ndarray, message, *, extra=()) -> list[BugPattern]:
    """Patterns for a forward that skips one of its ``steps`` (``(name, callable)``, applied in order; ``extra``:
    more ``(name, steps)`` variants): the output it would give, or, where the shapes no longer fit, the error it
    would raise. ``message(names)`` says which step(s); variants that raise the same error share one message."""
    outputs: list[tuple[str, np.ndarray]] = []
    errors: dict[str, list[str]] = {}
    variants = [(name, [s for s in steps if s[0] != name]) for name, _ in steps] + list(extra)
    for name, kept in variants:
        try:
            with torch.no_grad():
                h = _t(x)
                for _, step in kept:
                    h = step(h)
            outputs.append((name, _np(h)))
        except Exception as exc:  # the same shapes give the student the same error
            errors.setdefault(str(exc).split("\n")[0], []).append(name)
    patterns = [BugPattern("matches", message([name]), data=out, output="[0]") for name, out in outputs]
    patterns += [BugPattern("raises", message(names), data=error) for error, names in errors.items() if len(error) > 20]
    return patterns


def _lenet_skipped(names: list[str]):
    which = " o ".join(f"`{n}`" for n in names)
    order = " → ".join(ref.LENET_LAYERS)
    return _msg(f"Tu forward parece saltarse la capa {which} (o no la aplica en su sitio): aplica las capas en este orden: "
                f"{order}.",
                f"Your forward seems to skip the layer {which} (or not to apply it in its place): apply the layers in this "
                f"order: {order}.")


def build_lenet_forward_backward(rng: np.random.Generator) -> Case:
    model, state = _lenet(rng)
    x = _images(rng, int(rng.integers(2, 5)))
    upstream = rng.normal(size=(len(x), 4))
    probe = module_probe("LeNet", (), state, x, upstream=upstream)
    patterns = skipped_step_patterns(list(model.named_children()), x, _lenet_skipped)
    return Case(probe, reference_run(model, x, upstream=upstream), MODULE, output_names=module_names(True),
                patterns=patterns)


def build_lenet_shapes(rng: np.random.Generator) -> Case:
    n = int(rng.integers(1, 4))
    x = _images(rng, n).astype(np.float32)  # the student's own LeNet, float32 as built
    expected = [(name, shape) for name, shape in ref.lenet_shapes(ref.LeNet(), _t(x))]
    probe = Probe([Call("m", "LeNet", ()), Call("x", "@tensor", (x,)),
                   Call("shapes", "lenet_shapes", (Ref("m"), Ref("x")))], outputs=Ref("shapes"))
    names = {f"[{i}]": f"{name} (capa {i + 1})" for i, (name, _) in enumerate(expected)}
    return Case(probe, expected, Tolerance(0.0, 0.0), output_names=names)


# -- q4: the residual block ------------------------------------------------------------

NO_FINAL_RELU = _msg("Falta la ReLU final: el bloque devuelve relu(Y + X), la ReLU va *después* de sumar el atajo.",
                     "The final ReLU is missing: the block returns relu(Y + X), the ReLU comes *after* adding the shortcut.")
RELU_BEFORE_ADD = _msg("Aplicas la ReLU antes de sumar el atajo (relu(Y) + X): debe ser relu(Y + X), después de la suma.",
                       "You apply the ReLU before adding the shortcut (relu(Y) + X): it must be relu(Y + X), after the sum.")
NO_PROJECTION = _msg("Con use_1x1conv=True el atajo debe pasar por la convolución 1×1 (X = self.conv3(X)) antes de "
                     "sumarse; tu bloque suma X sin proyectar.",
                     "With use_1x1conv=True the shortcut must go through the 1×1 convolution (X = self.conv3(X)) "
                     "before the sum; your block adds X unprojected.")
NO_SHORTCUT = _msg("Tu bloque no suma el atajo X: un bloque residual devuelve relu(Y + X).",
                   "Your block does not add the shortcut X: a residual block returns relu(Y + X).")
EVAL_USES_BATCH = _msg("En modo eval la BatchNorm debe usar sus estadísticas acumuladas (running_mean/running_var), no "
                       "las del lote: usa nn.BatchNorm2d y no fuerces training=True.",
                       "In eval mode BatchNorm must use its running statistics (running_mean/running_var), not the "
                       "batch's: use nn.BatchNorm2d and do not force training=True.")


def _residual_patterns(state: dict, args: tuple, x: np.ndarray, mode: str, which: tuple[str, ...]) -> list[BugPattern]:
    buggy = {"no_relu": (bug.ResidualNoFinalReLU, NO_FINAL_RELU), "relu_before": (bug.ResidualReLUBeforeAdd, RELU_BEFORE_ADD),
             "no_projection": (bug.ResidualNoProjection, NO_PROJECTION), "no_shortcut": (bug.ResidualNoShortcut, NO_SHORTCUT)}
    patterns = []
    for key in which:
        cls, message = buggy[key]
        module = loaded(cls(*args), state)
        patterns.append(BugPattern("matches", message, data=_forward_only(module, x, mode), output="[0]"))
    return patterns


def _residual_case(rng: np.random.Generator, args: tuple, *, mode: str, backward: bool, patterns: tuple[str, ...],
                   n: int | None = None) -> Case:
    model = ref.Residual(*args)
    state = random_state(model, rng)
    model = loaded(model, state)
    size = int(rng.integers(5, 8))
    x = rng.normal(size=(n or int(rng.integers(2, 5)), args[0], size, size))
    found = _residual_patterns(state, args, x, mode, patterns)
    if mode == "eval":  # an answer equal to the train-mode output: batch statistics used in eval mode
        found.append(BugPattern("matches", EVAL_USES_BATCH, output="[0]",
                                data=_forward_only(loaded(ref.Residual(*args), state), x, "train")))
    found += _residual_skipped(loaded(ref.Residual(*args), state), x, mode)
    found.append(BugPattern("raises", RESIDUAL_SHAPES, data="must match the size of tensor"))
    upstream = None
    if backward:
        out_shape = (x.shape[0], args[1], *ref.Residual(*args)(_t(x).float()).shape[2:])
        upstream = rng.normal(size=out_shape)
    expected = reference_run(model, x, mode=mode, upstream=upstream)
    probe = module_probe("Residual", args, state, x, mode=mode, upstream=upstream)
    return Case(probe, expected, MODULE, output_names=module_names(backward), patterns=found)


RESIDUAL_SHAPES = _msg("La rama principal y el atajo no tienen la misma forma al sumarlos: las dos convoluciones 3×3 "
                       "llevan padding=1, conv1 usa stride=strides, y con use_1x1conv=True el atajo pasa por conv3 "
                       "(1×1, stride=strides) antes de la suma.",
                       "The main path and the shortcut do not have the same shape when added: both 3×3 convolutions "
                       "take padding=1, conv1 uses stride=strides, and with use_1x1conv=True the shortcut goes through "
                       "conv3 (1×1, stride=strides) before the sum.")


def _residual_skipped(block: torch.nn.Module, x: np.ndarray, mode: str) -> list[BugPattern]:
    """The block with one step of its main path skipped (conv1, bn1, the inner ReLU, conv2, bn2)."""
    block.train(mode == "train")
    shortcut = block.conv3 if block.conv3 is not None else (lambda t: t)
    main = [("conv1", block.conv1), ("bn1", block.bn1), ("ReLU", torch.relu), ("conv2", block.conv2), ("bn2", block.bn2)]

    def message(names: list[str]):
        which = " o ".join(f"`{n}`" for n in names)
        return _msg(f"Tu bloque parece saltarse {which} en la rama principal: Y = bn2(conv2(ReLU(bn1(conv1(X))))), y el "
                    "bloque devuelve relu(Y + atajo(X)).",
                    f"Your block seems to skip {which} in the main path: Y = bn2(conv2(ReLU(bn1(conv1(X))))), and the "
                    "block returns relu(Y + shortcut(X)).")

    patterns = []
    for pattern in skipped_step_patterns(main, x, message):
        if pattern.kind != "matches":
            continue  # shapes that do not fit: RESIDUAL_SHAPES says it
        # a main path alone is not the block's output: add the shortcut and the final ReLU
        with torch.no_grad():
            out = torch.relu(_t(pattern.data) + shortcut(_t(x)))
        patterns.append(BugPattern("matches", pattern.message, data=_np(out), output="[0]"))
    return patterns


def build_residual_parameters(rng: np.random.Generator) -> Case:
    c_in, c_out = int(rng.integers(2, 5)), int(rng.integers(5, 8))
    projected, plain = ref.Residual(c_in, c_out, True, 2), ref.Residual(c_out, c_out)
    s1, s2 = random_state(projected, rng), random_state(plain, rng)
    probe = Probe([Call("a", "Residual", (c_in, c_out), {"use_1x1conv": True, "strides": 2}),
                   Call("la", "@load_state_dict", (Ref("a"), s1)), Call("sa", "@state_dict", (Ref("a"),)),
                   Call("b", "Residual", (c_out, c_out)),
                   Call("lb", "@load_state_dict", (Ref("b"), s2)), Call("sb", "@state_dict", (Ref("b"),))],
                  outputs=(Ref("sa"), Ref("sb")))
    return Case(probe, (s1, s2), MODULE, output_names=_names(f"Residual({c_in}, {c_out}, use_1x1conv=True, strides=2)",
                                                             f"Residual({c_out}, {c_out})"))


def build_residual_downsample(rng: np.random.Generator) -> Case:
    args = (int(rng.integers(2, 4)), int(rng.integers(4, 7)), True, 2)
    return _residual_case(rng, args, mode="train", backward=True, patterns=("no_relu", "relu_before"))


def build_residual_identity(rng: np.random.Generator) -> Case:
    c = int(rng.integers(2, 5))
    return _residual_case(rng, (c, c, False, 1), mode="train", backward=True,
                          patterns=("no_relu", "relu_before", "no_shortcut"))


def build_residual_projection_same_shape(rng: np.random.Generator) -> Case:
    c = int(rng.integers(2, 5))
    return _residual_case(rng, (c, c, True, 1), mode="train", backward=False,
                          patterns=("no_projection", "no_relu", "relu_before"))


def build_residual_eval(rng: np.random.Generator) -> Case:
    return _residual_case(rng, (2, 4, True, 2), mode="eval", backward=False, patterns=("no_relu", "relu_before"), n=3)


# -- q5: ResNet ------------------------------------------------------------------------

COUNT_STATE = _msg("Cuentas también los buffers de la BatchNorm (running_mean, running_var...): cuenta solo "
                   "model.parameters().", "You also count BatchNorm's buffers (running_mean, running_var...): count only "
                   "model.parameters().")
COUNT_TENSORS = _msg("Cuentas tensores de parámetros, no números: suma p.numel() de cada parámetro.",
                     "You count parameter tensors, not numbers: sum p.numel() over the parameters.")


def _channels(rng: np.random.Generator) -> tuple[int, int, int]:
    c1 = int(rng.integers(2, 5))
    return c1, c1 + int(rng.integers(1, 4)), c1 + int(rng.integers(2, 6))


def build_resnet_block(rng: np.random.Generator) -> Case:
    # a downsampling stage (first_block=False); first_block=True is layer1 of the ResNet checks
    c_in, c_out = int(rng.integers(2, 4)), int(rng.integers(4, 6))
    model = ref.resnet_block(c_in, c_out, 2)
    state = random_state(model, rng)
    model = loaded(model, state)
    x = rng.normal(size=(2, c_in, 6, 6))
    probe = module_probe("resnet_block", (c_in, c_out, 2), state, x)
    return Case(probe, reference_run(model, x), MODULE, output_names=module_names(False), patterns=[
        BugPattern("raises", _msg("Los parámetros de tu etapa no son los prescritos: resnet_block devuelve un "
                                  "nn.Sequential de exactamente num_residuals bloques Residual (0, 1, ...): ¿falta un "
                                  "bloque (un range que se queda corto) o sobra alguno?",
                                  "Your stage's parameters are not the prescribed ones: resnet_block returns an "
                                  "nn.Sequential of exactly num_residuals Residual blocks (0, 1, ...): a missing block "
                                  "(a range that stops short) or an extra one?"), data="faltan parámetros"),
        BugPattern("shape", _msg("La etapa debe reducir a la mitad el alto y el ancho: su primer bloque (salvo con "
                                 "first_block=True) es Residual(in, out, use_1x1conv=True, strides=2).",
                                 "The stage must halve the height and width: its first block (unless first_block=True) "
                                 "is Residual(in, out, use_1x1conv=True, strides=2)."), output="[0]")])


def _resnet(rng: np.random.Generator):
    channels = _channels(rng)
    model = ref.ResNet(1, 4, channels)
    state = random_state(model, rng)
    return loaded(model, state), state, channels


def _resnet_skipped(state: dict, channels: tuple, x: np.ndarray, mode: str) -> list[BugPattern]:
    """The ResNet with one of its steps skipped, or its first convolution without padding."""
    net = loaded(ref.ResNet(1, 4, channels), state)
    net.train(mode == "train")
    steps = [("conv1", net.conv1), ("bn1", net.bn1), ("ReLU", torch.relu), ("layer1", net.layer1),
             ("layer2", net.layer2), ("layer3", net.layer3), ("pool", net.pool), ("flatten", net.flatten), ("fc", net.fc)]
    no_padding = [("conv1 sin padding", lambda t: torch.nn.functional.conv2d(t, net.conv1.weight, net.conv1.bias)),
                  *steps[1:]]

    def message(names: list[str]):
        if names == ["conv1 sin padding"]:
            return _msg("conv1 de la ResNet lleva padding=1 (kernel 3×3): así conserva el alto y el ancho de la entrada.",
                        "The ResNet's conv1 takes padding=1 (3×3 kernel): that keeps the input's height and width.")
        which = " o ".join(f"`{n}`" for n in names)
        return _msg(f"Tu ResNet parece saltarse {which}: el orden es conv1 → bn1 → ReLU → layer1 → layer2 → layer3 → "
                    "pool → flatten → fc.",
                    f"Your ResNet seems to skip {which}: the order is conv1 → bn1 → ReLU → layer1 → layer2 → layer3 → "
                    "pool → flatten → fc.")

    return skipped_step_patterns(steps, x, message, extra=[("conv1 sin padding", no_padding)])


def build_resnet_train(rng: np.random.Generator) -> Case:
    model, state, channels = _resnet(rng)
    x = _images(rng, 3, size=int(rng.choice([12, 16])))
    upstream = rng.normal(size=(3, 4))
    probe = module_probe("ResNet", (1, 4, channels), state, x, upstream=upstream)
    return Case(probe, reference_run(model, x, upstream=upstream), MODULE, output_names=module_names(True),
                patterns=_resnet_skipped(state, channels, x, "train"))


def build_resnet_eval(rng: np.random.Generator) -> Case:
    model, state, channels = _resnet(rng)
    x = _images(rng, 2, size=12)
    probe = module_probe("ResNet", (1, 4, channels), state, x, mode="eval")
    return Case(probe, reference_run(model, x, mode="eval"), MODULE, output_names=module_names(False),
                patterns=_resnet_skipped(state, channels, x, "eval"))


def build_count_parameters(rng: np.random.Generator) -> Case:
    channels = _channels(rng)
    c_in, c_out = int(rng.integers(2, 5)), int(rng.integers(5, 9))
    net, block = ref.ResNet(1, 4, channels), ref.Residual(c_in, c_out, True, 2)
    probe = Probe([Call("net", "ResNet", (1, 4, channels)), Call("n_net", "count_parameters", (Ref("net"),)),
                   Call("block", "Residual", (c_in, c_out), {"use_1x1conv": True, "strides": 2}),
                   Call("n_block", "count_parameters", (Ref("block"),))],
                  outputs=(Ref("n_net"), Ref("n_block")))
    expected = (ref.count_parameters(net), ref.count_parameters(block))
    with_buffers = tuple(sum(v.numel() for v in m.state_dict().values()) for m in (net, block))
    tensors = tuple(len(list(m.parameters())) for m in (net, block))
    return Case(probe, expected, Tolerance(0.0, 0.0),
                output_names=_names(f"ResNet(1, 4, {channels})", f"Residual({c_in}, {c_out}, use_1x1conv=True, strides=2)"),
                patterns=[BugPattern("matches", COUNT_STATE, data=with_buffers),
                          BugPattern("matches", COUNT_TENSORS, data=tensors)])


# -- q6: evaluation and training ----------------------------------------------------------

EVAL_TRAIN_MODE = _msg("evaluate dejó el modelo en modo entrenamiento: la BatchNorm normalizó con las estadísticas de "
                       "cada lote. Llama a model.eval() antes de evaluar.",
                       "evaluate left the model in training mode: BatchNorm normalised with each batch's statistics. "
                       "Call model.eval() before evaluating.")
EVAL_STATS_CHANGED = _msg("evaluate cambió las estadísticas de la BatchNorm (running_mean/running_var): en modo "
                          "entrenamiento cada forward las actualiza. Llama a model.eval() (y usa torch.no_grad()).",
                          "evaluate changed BatchNorm's statistics (running_mean/running_var): in training mode every "
                          "forward updates them. Call model.eval() (and use torch.no_grad()).")
EVAL_BATCH_MEANS = _msg("La pérdida es la media sobre *todos* los ejemplos: si el último lote es más pequeño, la media "
                        "de las medias de los lotes no lo es. Suma las pérdidas (reduction='sum') y divide por N.",
                        "The loss is the mean over *all* examples: when the last batch is smaller, the mean of the "
                        "batches' means is not. Sum the losses (reduction='sum') and divide by N.")


def build_evaluate(rng: np.random.Generator) -> Case:
    channels = (int(rng.integers(2, 4)), 4, int(rng.integers(4, 7)))
    model = ref.ResNet(1, 4, channels)
    state = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in random_state(model, rng).items()}
    # the last batch is smaller; batches of 3 and 4 classes: logits.argmax over the wrong dim cannot fit the labels
    n, batch_size = int(rng.choice([10, 11])), 3
    X = _images(rng, n, size=12).astype(np.float32)
    y = rng.integers(0, 4, size=n).astype(np.int64)
    reference = loaded(ref.ResNet(1, 4, channels), state)  # a float64 copy of the float32 weights
    expected = (ref.evaluate(reference, X, y, batch_size=batch_size), state)
    train_mode = loaded(ref.ResNet(1, 4, channels), state)
    bad_loss = bug.evaluate_train_mode(train_mode, X, y, batch_size=batch_size)[0]
    batch_means = bug.evaluate_mean_of_batch_means(loaded(ref.ResNet(1, 4, channels), state), X, y,
                                                   batch_size=batch_size)[0]
    probe = Probe([Call("m", "ResNet", (1, 4, channels)),
                   Call("load", "@load_state_dict", (Ref("m"), state), {"dtype": "float32"}),
                   Call("train", "@method", (Ref("m"), "train")),  # as a model is right after training
                   Call("dev", "@device"),
                   Call("res", "evaluate", (Ref("m"), X, y), {"batch_size": batch_size, "device": Ref("dev")}),
                   Call("after", "@state_dict", (Ref("m"),))],
                  outputs=(Ref("res"), Ref("after")))
    return Case(probe, expected, EVAL,
                output_names={"[0]": "(loss, accuracy)", "[0][0]": "loss", "[0][1]": "accuracy", "[1]": "state_dict"},
                patterns=[BugPattern("matches", EVAL_TRAIN_MODE, data=bad_loss, output="[0][0]"),
                          BugPattern("matches", EVAL_STATS_CHANGED, data=state_arrays(train_mode), output="[1]"),
                          BugPattern("matches", EVAL_BATCH_MEANS, data=batch_means, output="[0][0]"),
                          BugPattern("matches", EVAL_BATCH_MEANS, output="[0][0]",
                                     data=batch_means * -(-n // batch_size) / n),
                          BugPattern("scaled", _msg(f"La pérdida es {n} veces la esperada: es la suma de las pérdidas de "
                                                    "los ejemplos; divide por el número de ejemplos.",
                                                    f"The loss is {n} times the expected one: it is the sum of the "
                                                    "examples' losses; divide by the number of examples."),
                                     data=float(n), output="[0][0]"),
                          BugPattern("scaled", _msg("accuracy es el número de aciertos: divide por el número de ejemplos "
                                                    "(una fracción en [0, 1]).",
                                                    "accuracy is the number of hits: divide by the number of examples "
                                                    "(a fraction in [0, 1])."),
                                     data=float(n), output="[0][1]")])


def _judge_training(value, case: Case) -> list[Mismatch]:
    ctx = case.context

    def fail(es: str, en: str, hint: dict[str, str] | None = None) -> list[Mismatch]:
        return [Mismatch(path="", kind="custom", message=_msg(es, en), hints=[hint] if hint else [])]

    if not (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], dict)):
        return fail("No pude leer el resultado de train_cnn.", "Could not read train_cnn's result.")
    history, state = value
    hist = np.asarray(history, dtype=float) if isinstance(history, (list, tuple, np.ndarray)) else np.array([])
    epochs = ctx["epochs"]
    if hist.ndim != 1 or len(hist) != epochs or not np.all(np.isfinite(hist)):
        one = abs(hist.size - epochs) == 1
        return fail(f"train_cnn debe devolver una lista con la pérdida media (finita) de cada época ({epochs}); "
                    f"devolvió {hist.size} valores.",
                    f"train_cnn must return a list with the mean (finite) loss of each epoch ({epochs}); "
                    f"it returned {hist.size} values.",
                    _msg("¿Un range que se queda corto o se pasa en uno?",
                         "A range that stops one short or goes one too far?") if one else None)
    model = ref.LeNet()
    try:
        model.load_state_dict({k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in state.items()})
    except Exception as exc:  # names were checked in q3; say it plainly here too
        return fail(f"No pude cargar los pesos entrenados en la LeNet de referencia: {str(exc)[:300]}",
                    f"Could not load the trained weights into the reference LeNet: {str(exc)[:300]}")
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        return fail("Los pesos entrenados tienen NaN/inf: ¿lr demasiado grande?", "The trained weights hold NaN/inf: lr too large?")
    acc = ref.accuracy(model, ctx["X_test"], ctx["y_test"])
    need = ctx["reference_accuracy"] - TRAIN_MARGIN
    if acc < need:
        flat = " La pérdida no bajó entre épocas." if not hist[-1] < hist[0] else ""
        flat_en = " The loss did not go down across epochs." if not hist[-1] < hist[0] else ""
        return fail(f"Tras {epochs} épocas, tu LeNet acierta el {acc:.1%} de imágenes nuevas; la referencia, con los "
                    f"mismos datos e hiperparámetros, el {ctx['reference_accuracy']:.1%} (se pide al menos {need:.1%})."
                    f"{flat}",
                    f"After {epochs} epochs your LeNet gets {acc:.1%} of new images right; the reference, with the "
                    f"same data and hyperparameters, {ctx['reference_accuracy']:.1%} (at least {need:.1%} is required)."
                    f"{flat_en}",
                    _msg("Revisa el bucle: en cada lote, optimizer.zero_grad() (si no, los gradientes se acumulan), "
                         "loss.backward() y después optimizer.step(); y model.train() al empezar cada época.",
                         "Check the loop: every batch, optimizer.zero_grad() (otherwise the gradients accumulate), "
                         "loss.backward() and then optimizer.step(); and model.train() at the start of every epoch."))
    # the first epoch's mean loss hardly depends on the init or the order (about 0.9 from log 4 = 1.39)
    first = ctx["reference_history"][0]
    if not first / HISTORY_FACTOR <= hist[0] <= first * HISTORY_FACTOR:
        return fail(f"La pérdida media de tu primera época es {hist[0]:.4g}; la de la referencia, {first:.4g}.",
                    f"Your first epoch's mean loss is {hist[0]:.4g}; the reference's, {first:.4g}.",
                    _msg("Cada valor del historial es la pérdida *media* por ejemplo de la época (suma "
                         "loss.item() * len(lote) y divide por el número de ejemplos).",
                         "Each value of the history is the epoch's *mean* loss per example (add up "
                         "loss.item() * len(batch) and divide by the number of examples)."))
    return []


HISTORY_FACTOR = 3.0  # a correct loop from another init and order: within ±20 % of the reference's first epoch


def build_train(rng: np.random.Generator) -> Case:
    seed = int(rng.integers(0, 2**31))
    X, y = make_shapes(TRAIN["n_train"], seed=seed)
    X_test, y_test = make_shapes(TRAIN["n_test"], seed=seed + 1)
    kwargs = {"epochs": TRAIN["epochs"], "lr": TRAIN["lr"], "batch_size": TRAIN["batch_size"], "seed": seed % 10_000}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same work as in the sandbox, and no oversubscription when grading in parallel
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = ref.LeNet()
            reference_history = ref.train_cnn(model, X, y, **kwargs)
        reference_accuracy = ref.accuracy(model, X_test, y_test)
    finally:
        torch.set_num_threads(threads)
    probe = Probe([Call("m", "LeNet", ()), Call("dev", "@device"),
                   Call("hist", "train_cnn", (Ref("m"), X, y), {**kwargs, "device": Ref("dev")}),
                   Call("after", "@state_dict", (Ref("m"),))], outputs=(Ref("hist"), Ref("after")))
    return Case(probe, judge=_judge_training,
                context={"X_test": X_test, "y_test": y_test, "epochs": TRAIN["epochs"],
                         "reference_accuracy": reference_accuracy, "reference_history": reference_history})


def _check(question: str, name: str, es: str, en: str, build, **kwargs) -> Check:
    return Check(question, name, _msg(es, en), build, **kwargs)


CHECKS = [
    # q1 · conv2d_forward
    _check("q1", "conv2d_basic", "conv2d_forward: stride 1, sin padding, lote y canales aleatorios",
           "conv2d_forward: stride 1, no padding, random batch and channels", build_conv_basic, public=True),
    _check("q1", "conv2d_stride_padding", "conv2d_forward con stride 2, padding 1 o 2, tamaños impares y kernel 3×2",
           "conv2d_forward with stride 2, padding 1 or 2, odd sizes and a 3×2 kernel", _build_conv_stride_padding(False)),
    _check("q1", "conv2d_layout", "conv2d_forward con C = F y kernel cuadrado: disposición (F, C, KH, KW) de los pesos",
           "conv2d_forward with C = F and a square kernel: the (F, C, KH, KW) weight layout", build_conv_square),
    _check("q1", "conv2d_backward", "conv2d_forward: gradientes respecto a x, w y b (autograd) con padding 1",
           "conv2d_forward: gradients w.r.t. x, w and b (autograd) with padding 1",
           build_conv_backward, weight=2),
    _check("q1", "conv2d_backward_stride", "conv2d_forward con stride 2, padding 1 o 2 y tamaños impares: salida y "
           "gradientes (x, w, b)", "conv2d_forward with stride 2, padding 1 or 2 and odd sizes: output and gradients "
           "(x, w, b)", _build_conv_stride_padding(True), weight=2),
    _check("q1", "conv2d_single", "conv2d_forward con una imagen de un canal, tamaño impar, stride 2",
           "conv2d_forward with one single-channel image, odd size, stride 2", build_conv_single),
    # q2 · maxpool2d_forward
    _check("q2", "maxpool_default", "maxpool2d_forward con los valores por defecto (2×2, paso 2)",
           "maxpool2d_forward with the defaults (2×2, stride 2)", build_pool_default, public=True),
    _check("q2", "maxpool_backward", "maxpool2d_forward: el gradiente solo llega al máximo de cada ventana",
           "maxpool2d_forward: the gradient only reaches each window's maximum", build_pool_backward),
    _check("q2", "maxpool_overlap", "maxpool2d_forward con ventanas solapadas (3×3, paso 2)",
           "maxpool2d_forward with overlapping windows (3×3, stride 2)", build_pool_overlap),
    _check("q2", "maxpool_odd", "maxpool2d_forward con una imagen de un canal de tamaño impar",
           "maxpool2d_forward with one single-channel image of odd size", build_pool_odd),
    # q3 · LeNet
    _check("q3", "lenet_parameters", "LeNet: nombres y formas de los parámetros prescritos",
           "LeNet: names and shapes of the prescribed parameters", build_lenet_parameters),
    _check("q3", "lenet_layers", "LeNet capa a capa (conv1 … fc3), cada una con la entrada de la referencia",
           "LeNet layer by layer (conv1 … fc3), each fed the reference's input", build_lenet_layers, weight=2),
    _check("q3", "lenet_forward_backward", "LeNet con pesos dados: logits y gradientes (entrada y parámetros)",
           "LeNet with given weights: logits and gradients (input and parameters)", build_lenet_forward_backward,
           weight=2),
    _check("q3", "lenet_shapes", "lenet_shapes: nombre y forma de la salida de cada capa",
           "lenet_shapes: name and output shape of every layer", build_lenet_shapes, public=True),
    # q4 · Residual
    _check("q4", "residual_parameters", "Residual: parámetros prescritos, con y sin la convolución 1×1 (conv3)",
           "Residual: prescribed parameters, with and without the 1×1 convolution (conv3)", build_residual_parameters),
    _check("q4", "residual_downsample", "Residual con proyección 1×1 y stride 2 en modo train: salida, gradientes y "
           "estadísticas de BN", "Residual with a 1×1 projection and stride 2 in train mode: output, gradients and "
           "BN statistics", build_residual_downsample, weight=2),
    _check("q4", "residual_identity", "Residual con atajo identidad en modo train: salida, gradientes y estadísticas",
           "Residual with an identity shortcut in train mode: output, gradients and statistics",
           build_residual_identity, weight=2),
    _check("q4", "residual_projection", "Residual con use_1x1conv=True sin cambiar la forma: el atajo pasa por conv3",
           "Residual with use_1x1conv=True and unchanged shape: the shortcut goes through conv3",
           build_residual_projection_same_shape),
    _check("q4", "residual_eval", "Residual en modo eval: la BN usa las estadísticas acumuladas",
           "Residual in eval mode: BN uses the running statistics", build_residual_eval, public=True),
    # q5 · ResNet
    _check("q5", "resnet_block", "resnet_block: una etapa de dos bloques que reduce a la mitad, en modo train",
           "resnet_block: a stage of two blocks that halves the size, in train mode", build_resnet_block),
    _check("q5", "resnet_train", "ResNet en modo train: logits, gradientes y estadísticas de BN",
           "ResNet in train mode: logits, gradients and BN statistics", build_resnet_train, weight=2),
    _check("q5", "resnet_eval", "ResNet en modo eval", "ResNet in eval mode", build_resnet_eval),
    _check("q5", "count_parameters", "count_parameters de una ResNet y de un bloque residual",
           "count_parameters of a ResNet and of a residual block", build_count_parameters, public=True),
    # q6 · evaluate and train_cnn
    _check("q6", "evaluate", "evaluate: pérdida media y exactitud en modo eval, sin tocar las estadísticas de BN",
           "evaluate: mean loss and accuracy in eval mode, leaving BN's statistics alone", build_evaluate, public=True),
    _check("q6", "train_cnn", f"train_cnn entrena una LeNet en {TRAIN['epochs']} épocas hasta la exactitud de la "
           f"referencia menos {TRAIN_MARGIN:.0%}", f"train_cnn trains a LeNet in {TRAIN['epochs']} epochs to the "
           f"reference's accuracy minus {TRAIN_MARGIN:.0%}", build_train, weight=2, timeout_s=90),
]
