"""autograder: sandboxed, reference-based grading of deep-learning notebooks.

Students use :func:`check` inside their notebook (public tests, in their own
process); instructors use the ``autograder`` command (``grade``, ``demo``,
``release``, ``validate``).
"""

__version__ = "0.1.0"


def check(question: str | None = None, *, lang: str | None = None) -> bool:
    """Run the public tests of ``question`` (``"q3"``), or of every question, in this notebook."""
    from .selfcheck import caller_namespace, check_in_namespace

    return check_in_namespace(caller_namespace(), question, lang=lang)


def check_all(*, lang: str | None = None) -> bool:
    """Run every public test of this notebook's assignment."""
    from .selfcheck import caller_namespace, check_in_namespace

    return check_in_namespace(caller_namespace(), None, lang=lang)


__all__ = ["__version__", "check", "check_all"]
