"""Seeded toy data sets for the course's notebooks (pure numpy, no downloads)."""

from .toy2d import make_moons, make_spirals

__all__ = ["make_moons", "make_spirals"]
