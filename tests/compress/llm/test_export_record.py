"""Where an exported LLM artifact's record is found: beside it (`llm export --out`), or one folder
up (a run keeps the artifact in artifacts/<target>/model/ and the record beside that folder)."""

from __future__ import annotations

import json

import pytest

from edgecompress.compress.llm.export import RECORD, artifact_reference, record_path
from edgecompress.errors import UserError


def test_record_beside_a_file_artifact_is_found_when_exported_by_llm_export(tmp_path):
    (tmp_path / RECORD).write_text(json.dumps({"model": "smollm2-135m"}))
    assert artifact_reference(tmp_path / "model.tflite", None) == "smollm2-135m"


def test_record_one_folder_up_is_found_when_the_artifact_was_made_by_a_run(tmp_path):
    folder = tmp_path / "artifacts" / "x86-cpu-llm"
    (folder / "model").mkdir(parents=True)
    (folder / RECORD).write_text(json.dumps({"model": "p6block", "target": {"threads": 2}}))
    assert record_path(folder / "model") == folder / RECORD  # an ONNX Runtime GenAI folder
    assert artifact_reference(folder / "model" / "model.pte", None) == "p6block"


def test_reference_is_asked_for_in_one_line_when_no_record_names_the_model(tmp_path):
    with pytest.raises(UserError, match="--reference is needed"):
        artifact_reference(tmp_path / "model.pte", None)
    assert artifact_reference(tmp_path / "model.pte", "given") == "given"
