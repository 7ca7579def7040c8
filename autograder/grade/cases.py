"""Building a batch's cases: fresh inputs and reference answers, once per batch.

Every check draws its inputs from its own generator, seeded by the batch seed
and the check's name, so one batch is reproducible (resume, regrade,
``--seed``) while a new batch gets new inputs. The reference answers are
computed here once and shared by every submission of the batch.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import numpy as np

from ..checks import Case, Check, probe_message

__all__ = ["GraderFault", "PreparedCheck", "check_rng", "new_seed", "prepare", "probe_message", "probe_seed"]


class GraderFault(RuntimeError):
    """A fault on the grader's side (a broken test or reference), never a student's."""


@dataclass
class PreparedCheck:
    check: Check
    case: Case
    seed: int = 0  # seeds random/numpy/torch in the student's process before the probe


def new_seed() -> int:
    """A batch seed from the OS's randomness (recorded, so the batch can be reproduced)."""
    return int.from_bytes(os.urandom(8), "big")


def _check_key(check: Check) -> int:
    return zlib.crc32(f"{check.question}/{check.name}".encode())


def check_rng(seed: int, check: Check) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, _check_key(check)])


def probe_seed(seed: int, check: Check) -> int:
    """The seed of the global generators (random, numpy, torch) for this check's probe."""
    return (seed ^ _check_key(check)) % 2**32


def prepare(checks: list[Check], seed: int) -> list[PreparedCheck]:
    """Build every check's case for the batch ``seed``."""
    prepared = []
    for check in checks:
        try:
            case = check.build(check_rng(seed, check))
        except Exception as exc:
            raise GraderFault(f"la prueba {check.question}/{check.name} falló al construirse: {exc!r}") from exc
        if not isinstance(case, Case):
            raise GraderFault(f"la prueba {check.question}/{check.name} no devolvió un Case")
        prepared.append(PreparedCheck(check, case, probe_seed(seed, check)))
    return prepared
