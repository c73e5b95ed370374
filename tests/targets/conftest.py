"""Shared, session-scoped artifacts: each (target, model) is exported once and reused.

TFLite conversion takes seconds even for the tiny models, so tests in every file ask
`exported(target, model)` and get the cached result.
"""

from __future__ import annotations

import pytest

from edgecompress.targets import list_profiles
from edgecompress.targets.extras import enable_hint
from tests.models import batch, tiny_bert, tiny_plain

MODELS = {"tiny_bert": tiny_bert, "tiny_plain": tiny_plain}


def needs_extra(fmt: str, toolchain: str):
    """Skip unless the optional extra of `fmt` is installed (the reason says how to install)."""
    return pytest.mark.skipif(enable_hint(fmt) is not None,
                              reason=f"{toolchain} not installed: {enable_hint(fmt)}")


# ExecuTorch and OpenVINO come with the `test` extra; a default install skips their targets.
needs_executorch = needs_extra("pte", "ExecuTorch")
needs_openvino = needs_extra("openvino", "OpenVINO")
_NEEDS = {"pte": needs_executorch, "openvino": needs_openvino}
# Targets that can run fp32: these tests check the fp32 export path (quantized schemes are in
# test_quantize.py; npu-int8 / edgetpu run static int8 only).
# rpi5 exports the same TFLite as arm64-phone plus its shape buckets (tests/compress/quantize/
# test_stage.py's bucket case runs by default); android-xnnpack's ExecuTorch lowering costs ~10 s
# a model: both run with -m slow here, so the default run keeps one export per format.
_SLOW = {"rpi5", "android-xnnpack"}
TARGETS = [pytest.param(p.name, marks=[*([_NEEDS[p.format]] if p.format in _NEEDS else []),
                                       *([pytest.mark.slow] if p.name in _SLOW else [])])
           for p in list_profiles() if "fp32" in p.runnable_schemes]


@pytest.fixture(scope="session")
def models():
    """name -> LoadedModel, built once."""
    return {name: make() for name, make in MODELS.items()}


@pytest.fixture(scope="session")
def exported(models, tmp_path_factory):
    """exported(target, model) -> (ExportResult, LoadedModel, (flags before, flags after)).

    The flags are every submodule's `training`, read right before and after the export (later
    tests put the shared modules in eval mode).
    """
    from edgecompress.targets import export, load_profile

    cache = {}
    out_dir = tmp_path_factory.mktemp("artifacts")

    def get(target: str, model: str):
        if (target, model) not in cache:
            loaded = models[model]
            flags = [m.training for m in loaded.module.modules()]
            result = export(loaded.module, batch(loaded), load_profile(target), out_dir,
                            name=f"{model}-{target}", scheme="fp32")
            after = [m.training for m in loaded.module.modules()]
            cache[target, model] = (result, loaded, (flags, after))
        return cache[target, model]

    return get
