"""Export a decoder to an LLM target and verify it: the target's converter writes the artifact,
its session is gated against the torch reference (gate.py), and the record says what was built,
how and how close it came.

Every check that needs no weights (target kind, architecture the converter takes, context,
prompt lengths, the held-out windows) runs before this: `edgecompress llm export` does them.
"""

from __future__ import annotations

from pathlib import Path

from edgecompress.compress.llm.gate import gate_lm
from edgecompress.compress.llm.load import load_weights
from edgecompress.compress.llm.reference import TorchSession
from edgecompress.targets.llm.bench import artifact_bytes, llm_host
from edgecompress.targets.llm.export_ortgenai import build_ortgenai
from edgecompress.targets.llm.session import open_session

RECORD = "llm_export.json"  # the record beside the artifact's files


def export_lm(checkpoint: Path, tokenizer, profile, out: Path, *, windows,
              prompts: dict[str, list[int]]) -> dict:
    """Convert `checkpoint` for LLM target `profile` into folder `out`, then gate it against the
    fp32 torch model on `windows` (metrics.token_windows) and the greedy `prompts` ({text: ids}).

    Returns the record (target, builder settings, size, gate, host); the caller writes it and
    calls gate.require_pass. Raises UserError / RuntimeError from the converter.
    """
    builder = build_ortgenai(checkpoint, out, scheme=profile.scheme,
                             block_size=profile.block_size,
                             accuracy_level=profile.accuracy_level, target=profile.name)
    session = open_session(out, threads=profile.threads)
    reference = TorchSession(load_weights(checkpoint))
    gate = gate_lm(session, reference, windows, profile.gate, prompts=prompts,
                   decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    size = artifact_bytes(out)
    return {"checkpoint": str(checkpoint), "target": profile.to_json(), "format": profile.format,
            "builder": builder, "size_bytes": size, "size_mb": size / 1e6,
            "within_size_budget": None if profile.size_mb is None
            else size / 1e6 <= profile.size_mb,
            "gate": gate, "host": llm_host(profile.threads)}
