"""Student-facing messages, Spanish by default, English on request (``--lang en``)."""

from __future__ import annotations

LANGS = ("es", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "missing_function": {
        "es": "No encuentro la función `{function}`: ¿ejecutaste su celda, y está escrita con ese nombre exacto?",
        "en": "Function `{function}` is not defined: did its cell run, and does it have exactly this name?",
    },
    "missing_in_failed_cell": {
        "es": "`{function}` no quedó definida porque la celda {cell} falló antes: {reason}",
        "en": "`{function}` was never defined because cell {cell} failed first: {reason}",
    },
    "raised": {
        "es": "`{function}` lanzó {type}: {message}",
        "en": "`{function}` raised {type}: {message}",
    },
    "not_implemented": {
        "es": "`{function}` todavía no está implementada (lanza NotImplementedError): escribe tu código donde dice "
              "# TU CÓDIGO AQUÍ.",
        "en": "`{function}` is not implemented yet (it raises NotImplementedError): write your code where it says "
              "# TU CÓDIGO AQUÍ.",
    },
    "unsendable": {
        "es": "`{function}` devolvió algo que no se puede enviar al calificador ({message}): devuelve arrays de "
              "numpy, números, tuplas, listas o diccionarios, de un tamaño razonable",
        "en": "`{function}` returned something that cannot be sent to the grader ({message}): return numpy arrays, "
              "numbers, tuples, lists or dicts, of a reasonable size",
    },
    "check_timeout": {
        "es": "`{function}` no terminó en {seconds:g} s (¿un bucle infinito, o demasiadas iteraciones?)",
        "en": "`{function}` did not finish within {seconds:g} s (an infinite loop, or too many iterations?)",
    },
    "submission_cap": {
        "es": "Se agotó el tiempo total del cuaderno ({seconds:g} s) antes de esta prueba.",
        "en": "The notebook's total time ({seconds:g} s) ran out before this check.",
    },
    "crash": {
        "es": "El proceso de tu cuaderno terminó mientras se ejecutaba `{function}` ({detail}): "
              "¿`sys.exit`/`os._exit`, o demasiada memoria?",
        "en": "Your notebook's process died while `{function}` ran ({detail}): `sys.exit`/`os._exit`, or too much memory?",
    },
    "forbidden": {
        "es": "`{function}` usa `{module}`, que no está permitido en esta tarea: esta pregunta vale 0. "
              "Implementa la operación con numpy.",
        "en": "`{function}` uses `{module}`, which is not allowed in this assignment: this question scores 0. "
              "Implement it with numpy.",
    },
    "forbidden_name": {
        "es": "`{function}` usa `{name}`, que esta pregunta no permite (aquí se pide escribirlo a mano; "
              "prohibido: {names}): esta pregunta vale 0.",
        "en": "`{function}` uses `{name}`, which this question does not allow (it asks you to write it by hand; "
              "not allowed: {names}): this question scores 0.",
    },
    "root_cause": {
        "es": "Probablemente la causa está en `{function}` ({question}), que esta función usa y que también falla.",
        "en": "The root cause is probably `{function}` ({question}), which this function uses and which fails too.",
    },
    "invalid_notebook": {
        "es": "No se pudo calificar el archivo: {reason}",
        "en": "The file could not be graded: {reason}",
    },
    "not_run_invalid": {
        "es": "No ejecutada: el archivo entregado no es un cuaderno válido.",
        "en": "Not run: the file handed in is not a valid notebook.",
    },
    "cell_timeout": {
        "es": "la celda no terminó en {seconds:g} s y se detuvo",
        "en": "the cell did not finish within {seconds:g} s and was stopped",
    },
    "cell_crash": {
        "es": "el proceso terminó durante la celda ({detail})",
        "en": "the process died during the cell ({detail})",
    },
    "hint": {"es": "Pista: {hint}", "en": "Hint: {hint}"},
    "grader_error": {
        "es": "Error interno del calificador (no es culpa tuya; el profesor lo revisará): {message}",
        "en": "Internal grader error (not your fault; the instructor will look into it): {message}",
    },
}


def tr(key: str, lang: str = "es", **values: object) -> str:
    """The message ``key`` in ``lang`` with ``values`` filled in."""
    entry = MESSAGES[key]
    return entry.get(lang, entry["es"]).format(**values)
