"""`edgecompress prune --vocab-corpus` on a RoBERTa checkpoint (byte-level BPE), then `export`:
the pruned checkpoint is smaller and its ONNX export passes the parity gate."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.models.loading import load_model
from tests.models import family_corpus, save_tiny, tiny_family

runner = CliRunner()


def test_pruned_roberta_exports_with_parity_when_pruned_from_the_cli(tmp_path):
    model = save_tiny(tiny_family("roberta", own_tokenizer=True), tmp_path / "roberta")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(family_corpus()[:40]), encoding="utf-8")
    pruned = tmp_path / "pruned"
    result = runner.invoke(app, ["prune", str(model), "--vocab-corpus", str(corpus),
                                 "--no-eval", "--out", str(pruned)])
    assert result.exit_code == 0, result.output
    vocabulary = json.loads((pruned / "prune.json").read_text())["vocabulary"]
    assert vocabulary["tokenizer"] == "byte-level BPE"
    assert vocabulary["vocab_after"] < vocabulary["vocab_before"]
    assert len(load_model(pruned).tokenizer) == vocabulary["vocab_after"]
    exported = tmp_path / "onnx"
    result = runner.invoke(app, ["export", str(pruned), "--target", "x86-cpu", "--scheme", "fp32",
                                 "--out", str(exported)])
    assert result.exit_code == 0, result.output
    parity = json.loads((exported / "manifest.json").read_text())["parity"]
    assert parity["max_abs_diff"] <= parity["tolerance"]
