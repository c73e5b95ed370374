"""The tiny Llama and its ONNX Runtime GenAI exports (tiny_genai.py), as fixtures."""

from __future__ import annotations

import pytest

from tests.targets.llm.tiny_genai import tiny_genai, tiny_llama_dir


@pytest.fixture(scope="session")
def llama_dir():
    return tiny_llama_dir()


@pytest.fixture(scope="session")
def genai_fp32():
    return tiny_genai("fp32")


@pytest.fixture(scope="session")
def genai_int4():
    return tiny_genai("int4-rtn")
