"""A finished run directory written as the stages write it: one x86-cpu ONNX artifact."""

import pytest

from tests.reports.rundirs import make_run


@pytest.fixture()
def run_dir(tmp_path):
    """Older layout: bench.json's host is a plain string, eval.json has no vs_teacher."""
    return make_run(tmp_path / "run")
