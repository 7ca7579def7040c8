"""01_backprop's own mutants (``scripts/mutants.py``): bugs the generic operators cannot plant.

Each is an exact edit inside one function of the solved notebook; ``bug`` names the family of
``autograder.mutants.BUGS`` whose words the hint must use.
"""

from autograder.mutants import Rewrite

MUTANTS = [
    Rewrite("sigmoid_forward", "z = np.exp(-np.abs(x))  # e^{-|x|} en (0, 1]: nunca desborda\n"
            "    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))",
            "return np.exp(x) / (1.0 + np.exp(x))", "stability", "e^x / (1 + e^x) para todo x (exp(800) desborda)"),
    Rewrite("sigmoid_backward", "return dout * s * (1.0 - s)", "return dout * s", "formula", "derivada s en vez de s(1 − s)"),
    Rewrite("sigmoid_backward", "s = sigmoid_forward(x)", "s = x", "formula", "derivada con x en vez de σ(x)"),
    Rewrite("tanh_backward", "(1.0 - np.tanh(x) ** 2)", "(1.0 - x ** 2)", "formula", "derivada con x en vez de tanh(x)"),
    Rewrite("tanh_backward", "(1.0 - np.tanh(x) ** 2)", "(1.0 - np.tanh(x))", "formula", "derivada 1 − tanh(x)"),
    Rewrite("softmax_cross_entropy", "\n    dlogits[np.arange(N), y] -= 1.0  # probs - onehot", "", "formula",
            "dlogits = probs, sin restar el one-hot", ("onehot", "one-hot")),
    Rewrite("numerical_gradient", "x[idx] = old - h\n        f_minus = f(x)", "f_minus = f(x)", "formula",
            "diferencia hacia adelante sin restaurar x entre evaluaciones"),
    Rewrite("numerical_gradient", "\n        x[idx] = old  # restaura el valor original", "", "formula",
            "x no se restaura"),
    Rewrite("numerical_gradient", "(f_plus - f_minus) / (2.0 * h)", "(f_plus - f_minus) / h", "factor",
            "divide por h en vez de 2h"),
    Rewrite("relative_error", "np.maximum(1e-8, np.abs(a) + np.abs(b))", "(np.abs(a) + np.abs(b))", "zero_division",
            "sin el mínimo 1e-8 en el denominador"),
    Rewrite("binary_cross_entropy", "dprobs = (p - target) / (p * (1.0 - p)) / p.size", "dprobs = (p - target) / p.size",
            "formula", "gradiente de la BCE respecto a los logits, no a las probabilidades"),
    Rewrite("train", "\n            sgd_step(params, grads, lr)", "", "update", "sin sgd_step"),
]
