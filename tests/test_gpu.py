"""The CUDA path: every assignment graded on the GPU as its spec expects (skipped without a GPU)."""

from __future__ import annotations

import pytest

from autograder.course import Course
from autograder.devices import cuda_available, resolve_device
from autograder.validate import validate
from conftest import ROOT

COURSE = Course(ROOT)
TORCH_ASSIGNMENTS = [aid for aid in COURSE.assignment_ids() if COURSE.spec(aid).needs_torch]

needs_gpu = pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU here (CI has none)")


def test_auto_device_falls_back_to_cpu_without_a_gpu():
    assert resolve_device("auto") == ("cuda" if cuda_available() else "cpu")
    if not cuda_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("assignment", TORCH_ASSIGNMENTS)
def test_examples_grade_as_expected_on_cuda(assignment, sandbox_mode):
    verdicts = validate(COURSE.spec(assignment), ROOT, device="cuda", jobs=2)
    assert all(v.ok for v in verdicts), [(v.name, v.problems) for v in verdicts if not v.ok]
