"""A download-free text corpus for the sequence assignment: Spanish given names, seeded, pure Python.

The list below is written out here (given names are common words, free to
ship). :func:`make_names_text` draws names from it, the frequent ones more
often (a Zipf-like law, as in real name statistics), and joins them with
spaces: a small character-level corpus with real structure (syllables,
endings such as *-ia*, *-ez*, *-ón*) that a small RNN learns in seconds.
:func:`load_text` reads any UTF-8 text file an instructor or a student
points at, with the same normalisation.
"""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

NAMES = (
    "maría", "josé", "antonio", "carmen", "manuel", "ana", "francisco", "isabel", "david", "laura",
    "juan", "cristina", "javier", "marta", "daniel", "lucía", "carlos", "elena", "jesús", "pilar",
    "alejandro", "sara", "miguel", "paula", "rafael", "dolores", "pedro", "raquel", "pablo", "rosa",
    "ángel", "mercedes", "sergio", "teresa", "fernando", "andrea", "jorge", "beatriz", "luis", "silvia",
    "alberto", "julia", "álvaro", "nuria", "adrián", "irene", "diego", "patricia", "raúl", "rocío",
    "enrique", "alba", "ramón", "montserrat", "vicente", "mónica", "iván", "sonia", "rubén", "alicia",
    "óscar", "sandra", "andrés", "marina", "joaquín", "susana", "santiago", "yolanda", "eduardo", "natalia",
    "víctor", "claudia", "roberto", "inmaculada", "jaime", "eva", "mario", "esther", "ignacio", "ángela",
    "alfonso", "noelia", "salvador", "verónica", "ricardo", "lorena", "marcos", "nerea", "emilio", "carla",
    "jordi", "sofía", "guillermo", "inés", "gabriel", "aurora", "gonzalo", "victoria", "hugo", "lidia",
    "lucas", "amparo", "martín", "gloria", "nicolás", "consuelo", "agustín", "begoña", "tomás", "ainhoa",
    "félix", "encarnación", "julián", "olga", "gregorio", "milagros", "césar", "remedios", "héctor", "rebeca",
    "mateo", "daniela", "ismael", "miriam", "lorenzo", "valeria", "esteban", "ximena", "samuel", "lourdes",
    "íñigo", "catalina", "borja", "jimena", "aitor", "covadonga", "xavier", "almudena", "unai", "araceli",
    "ernesto", "guadalupe", "benjamín", "leire", "cristóbal", "maite", "baltasar", "itziar", "fabián", "zaida",
)
"""Spanish given names, lower case with their accents, roughly from most to least common."""


def normalise(text: str, lower: bool = True) -> str:
    """NFC Unicode, optionally lower case, every run of whitespace (newlines too) as one space, trimmed."""
    text = unicodedata.normalize("NFC", text)
    if lower:
        text = text.lower()
    return re.sub(r"\s+", " ", text).strip()


def make_names_text(num_names: int = 2000, seed: int = 0, names: tuple[str, ...] = NAMES) -> str:
    """``num_names`` names drawn at random from ``names``, joined by single spaces.

    Name ``k`` of the list (0-based) is drawn with probability proportional to
    ``1 / (k + 10)``, so frequent names repeat and rare ones still appear.
    Deterministic for a given ``seed`` (Python's ``random.Random``, the same on
    every platform).
    """
    if num_names < 0:
        raise ValueError(f"make_names_text: num_names debe ser >= 0 (se recibió {num_names})")
    if not names:
        raise ValueError("make_names_text: la lista de nombres está vacía")
    rng = random.Random(seed)
    weights = [1.0 / (k + 10) for k in range(len(names))]
    return " ".join(rng.choices(names, weights=weights, k=num_names))


def load_text(path: str | Path, lower: bool = True, max_chars: int | None = None) -> str:
    """The text of a UTF-8 file (any you have: a book from Project Gutenberg, your notes...), normalised.

    Same normalisation as the generated corpus: lower case (unless ``lower`` is
    false) and single spaces for every run of whitespace. ``max_chars`` keeps
    only the first characters (a long book trains slowly on a CPU).
    """
    text = Path(path).read_text(encoding="utf-8")
    text = normalise(text, lower=lower)
    return text if max_chars is None else text[:max_chars]
