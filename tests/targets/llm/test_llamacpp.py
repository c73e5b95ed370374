"""GGUF export (targets/llm/gguf_export.py) and the llama.cpp session (targets/llm/llamacpp.py) on
tiny random Llama checkpoints built in process: the f32 GGUF gives torch's logits, a pruned
checkpoint (fewer layers, KV heads, FFN neurons) converts the same way, and what llama.cpp
cannot take is refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("gguf", reason="GGUF export needs the gguf package: pip install "
                                   "'edgecompress[llm]'")
pytest.importorskip("transformers", reason="tiny checkpoints need transformers")

from edgecompress.compress.llm.prune import LMPruneConfig, prune_lm  # noqa: E402
from edgecompress.errors import UserError  # noqa: E402
from edgecompress.targets.llm.gguf_export import check_export, export_gguf  # noqa: E402
from tests.compress.llm.tiny import TEXTS, save_tiny, tiny_lm  # noqa: E402

IDS = [1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 60, 61, 62, 63]


def needs_llama_cpp():
    return pytest.importorskip("llama_cpp", reason="running a GGUF needs llama-cpp-python: "
                                                   "pip install 'edgecompress[llm]'")


def write_vocab_gguf(checkpoint, out):
    """A tensor-less GGUF holding the checkpoint's byte-level BPE tokenizer as llama.cpp reads
    one (what the registry model's own GGUF provides for SmolLM2)."""
    import gguf

    data = json.loads((checkpoint / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    special = {t["content"] for t in data["added_tokens"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in special else 1 for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(checkpoint dir, torch model, vocab GGUF) of a tiny random Llama."""
    lm = tiny_lm("llama")
    root = tmp_path_factory.mktemp("gguf")
    checkpoint = save_tiny(lm, root / "ckpt")
    return checkpoint, lm.model, write_vocab_gguf(checkpoint, root / "vocab.gguf")


@pytest.fixture(scope="module")
def pruned(tiny, tmp_path_factory):
    """A checkpoint with a layer, a KV group and 16 FFN neurons removed from the tiny Llama."""
    lm = tiny_lm("llama")
    prune_lm(lm.model, lm.tokenizer, TEXTS, LMPruneConfig(drop_layers=1, drop_kv_heads=1,
                                                          drop_ffn=16, samples=4))
    return save_tiny(lm, tmp_path_factory.mktemp("pruned")), lm.model, tiny[2]


def torch_logits(model, ids=IDS) -> np.ndarray:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].numpy()


@pytest.mark.parametrize("which", ["tiny", "pruned"])
def test_f32_gguf_logits_match_torch_when_exported(which, request, tmp_path):
    needs_llama_cpp()
    from edgecompress.targets.llm.llamacpp import open_gguf

    checkpoint, model, vocab = request.getfixturevalue(which)
    path = export_gguf(checkpoint, tmp_path, "f32", vocab_from=vocab)
    session = open_gguf(path, threads=1, exact=True)
    got, want = session.logits(IDS), torch_logits(model)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    assert [p.name for p in tmp_path.iterdir()] == ["model-f32.gguf"]  # no temporary left


def test_q8_0_gguf_stays_close_to_torch_when_quantized_by_llama_cpp(tiny, tmp_path):
    needs_llama_cpp()
    from edgecompress.targets.llm.llamacpp import open_gguf

    checkpoint, model, vocab = tiny
    q8 = export_gguf(checkpoint, tmp_path, "q8_0", vocab_from=vocab)
    f32 = export_gguf(checkpoint, tmp_path, "f32", vocab_from=vocab)
    assert q8.stat().st_size < 0.5 * f32.stat().st_size
    got, want = open_gguf(q8, threads=1).logits(IDS), torch_logits(model)
    log_p = torch.log_softmax(torch.tensor(want), -1)
    log_q = torch.log_softmax(torch.tensor(got), -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean().item()
    assert 0.0 <= kl < 1e-3


def test_greedy_tokens_match_torch_when_generated_by_llama_cpp(tiny, tmp_path):
    needs_llama_cpp()
    from edgecompress.targets.llm.llamacpp import open_gguf

    checkpoint, model, vocab = tiny
    session = open_gguf(export_gguf(checkpoint, tmp_path, "f32", vocab_from=vocab), threads=1,
                        exact=True)
    out = session.generate(IDS[:6], 8)
    ids = list(IDS[:6])
    for _ in range(8):  # torch greedy, no stop token
        ids.append(int(torch_logits(model, ids)[-1].argmax()))
    assert out.tokens == ids[6:]
    assert out.ttft_s > 0 and out.decode_s > 0


def test_f32_gguf_carries_the_pruned_shape_and_tokenizer_when_written(pruned, tmp_path):
    from gguf import GGUFReader

    checkpoint, model, vocab = pruned
    reader = GGUFReader(export_gguf(checkpoint, tmp_path, "f32", vocab_from=vocab))
    field = {k: f.contents() for k, f in reader.fields.items()}
    assert (field["llama.block_count"], field["llama.attention.head_count"],
            field["llama.attention.head_count_kv"], field["llama.feed_forward_length"],
            field["llama.attention.key_length"]) == (2, 2, 1, 48, 8)
    assert field["tokenizer.ggml.tokens"] == GGUFReader(vocab).fields[
        "tokenizer.ggml.tokens"].contents()
    tensors = {t.name: t for t in reader.tensors}
    # untied here (a tied one has no output.weight: llama.cpp reuses token_embd)
    assert ("output.weight" in tensors) == (not model.config.tie_word_embeddings)
    embed = model.get_input_embeddings().weight.detach().numpy()
    assert np.array_equal(np.asarray(tensors["token_embd.weight"].data), embed)


def test_check_export_refuses_when_one_layer_has_a_narrower_ffn(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    checkpoint, _, vocab = tiny
    odd = tmp_path / "odd"
    odd.mkdir()
    for item in checkpoint.iterdir():
        if item.suffix != ".safetensors":
            (odd / item.name).write_bytes(item.read_bytes())
    weights = load_file(str(checkpoint / "model.safetensors"))
    for name in ("gate_proj", "up_proj"):
        key = f"model.layers.1.mlp.{name}.weight"
        weights[key] = weights[key][:48].contiguous()
    weights["model.layers.1.mlp.down_proj.weight"] = \
        weights["model.layers.1.mlp.down_proj.weight"][:, :48].contiguous()
    save_file(weights, str(odd / "model.safetensors"))
    with pytest.raises(UserError, match="layer 1 mlp.gate_proj.weight is \\[48, 32\\].*same head "
                                        "and FFN counts in every layer"):
        check_export(odd, vocab)


def test_export_gguf_refuses_and_writes_nothing_when_the_tokenizer_differs(tiny, tmp_path):
    checkpoint, _, _ = tiny
    other = tmp_path / "other"
    other.mkdir()
    data = json.loads((checkpoint / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[10:12]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (other / "tokenizer.json").write_text(json.dumps(data))
    wrong = write_vocab_gguf(other, tmp_path / "wrong.gguf")
    out = tmp_path / "out"
    with pytest.raises(UserError, match="does not match wrong.gguf's \\(token 10"):
        export_gguf(checkpoint, out, "q8_0", vocab_from=wrong)
    assert not out.exists()


def test_check_export_refuses_when_the_family_is_not_llama(tmp_path):
    checkpoint = save_tiny(tiny_lm("qwen2"), tmp_path / "qwen2")
    with pytest.raises(UserError, match="covers the llama family, not 'qwen2'"):
        check_export(checkpoint, None)


def test_check_export_refuses_when_no_tokenizer_gguf_is_given(tiny):
    with pytest.raises(UserError, match="copies the tokenizer from a GGUF"):
        check_export(tiny[0], None)


def test_export_gguf_refuses_an_unknown_scheme_when_asked(tiny, tmp_path):
    with pytest.raises(UserError, match="unknown GGUF scheme 'q2_xyz'"):
        export_gguf(tiny[0], tmp_path / "out", "q2_xyz", vocab_from=tiny[2])
    assert not (tmp_path / "out").exists()


def test_open_session_runs_a_gguf_on_llama_cpp_when_the_file_is_gguf(tiny, tmp_path):
    needs_llama_cpp()
    from edgecompress.targets.llm.session import open_session

    checkpoint, _, vocab = tiny
    session = open_session(export_gguf(checkpoint, tmp_path, "f32", vocab_from=vocab),
                           threads=1)
    assert session.format == "gguf"
    assert session.logits(IDS[:3]).shape == (3, 400)
    with pytest.raises(UserError, match="not an LLM artifact"):
        open_session(checkpoint / "config.json", threads=1)


def test_llama_cpp_session_refuses_when_the_sequence_exceeds_the_context(tiny, tmp_path):
    needs_llama_cpp()
    from edgecompress.targets.llm.llamacpp import open_gguf

    checkpoint, _, vocab = tiny
    session = open_gguf(export_gguf(checkpoint, tmp_path, "f32", vocab_from=vocab), threads=1)
    with pytest.raises(UserError, match="260 tokens exceed the model.s context of 256"):
        session.generate(IDS[:10], 250)
