import json
import shutil

import pytest
import torch

from edgecompress.compress.models.inspection import inspect_model
from edgecompress.compress.models.loading import load_model
from edgecompress.errors import UserError
from tests.models import batch, save_tiny, tiny_plain


def _logits(loaded, inputs):
    with torch.no_grad():
        return loaded.module(torch.from_numpy(inputs["input_ids"]),
                             torch.from_numpy(inputs["attention_mask"]))


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_plain_dir"])
def test_load_model_gives_identical_logits_when_reloaded_from_checkpoint(fixture, request):
    path = request.getfixturevalue(fixture)
    first, second = load_model(path), load_model(path)
    inputs = batch(first)
    torch.testing.assert_close(_logits(first, inputs), _logits(second, inputs), rtol=0, atol=0)
    assert first.task == "classification" and len(first.labels) == 2


def test_load_model_is_a_mean_pooling_encoder_when_checkpoint_has_no_head():
    loaded = load_model("minilm-l6")
    assert loaded.task == "embedding" and loaded.kind == "hf"
    out = _logits(loaded, batch(loaded))
    assert out.shape == (4, 384)


def test_load_model_refuses_missing_path():
    with pytest.raises(UserError, match="model not found"):
        load_model("/no/such/checkpoint")


def test_load_model_refuses_directory_without_config(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        load_model(tmp_path)


def test_load_model_refuses_truncated_safetensors(tiny_bert_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(UserError, match="truncated|not a valid safetensors"):
        load_model(broken)


def test_load_model_refuses_garbage_safetensors(tiny_bert_dir, tmp_path):
    broken = tmp_path / "garbage"
    shutil.copytree(tiny_bert_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="safetensors"):
        load_model(broken)


def test_load_model_refuses_unsupported_architecture(tiny_bert_dir, tmp_path):
    other = tmp_path / "gpt"
    shutil.copytree(tiny_bert_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "gpt2"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="unsupported architecture 'gpt2'"):
        load_model(other)


def test_inspect_reads_uniform_shapes_when_model_is_tiny_bert(tiny_bert_dir):
    info = inspect_model(load_model(tiny_bert_dir))
    assert [(layer.heads, layer.ffn) for layer in info.layers] == [(4, 64), (4, 64)]
    assert info.params == info.embedding_params + info.encoder_params + info.head_params
    assert info.file_bytes == (tiny_bert_dir / "model.safetensors").stat().st_size


def test_inspect_reads_non_uniform_shapes_from_weights_when_plain_encoder_is_pruned(tmp_path):
    from dataclasses import replace

    from edgecompress.compress.models.encoder import EncoderClassifier

    loaded = tiny_plain()
    config = replace(loaded.module.config, heads=(3, 1), ffn=(17, 5))
    pruned = replace(loaded, module=EncoderClassifier(config))
    info = inspect_model(load_model(save_tiny(pruned, tmp_path / "pruned")))
    assert [(layer.heads, layer.ffn) for layer in info.layers] == [(3, 17), (1, 5)]
    assert info.embedding_params == loaded.tokenizer.vocab_size * 32
