import pytest
import torch

from edgecompress.compress.models.encoder import EncoderClassifier, EncoderConfig


def test_config_rejects_mismatched_layers_when_heads_and_ffn_differ_in_length():
    with pytest.raises(ValueError, match="differ"):
        EncoderConfig(vocab_size=10, heads=(2, 2), ffn=(8,))


def test_config_rejects_zero_heads_when_a_layer_has_none():
    with pytest.raises(ValueError, match="at least one head"):
        EncoderConfig(vocab_size=10, heads=(2, 0), ffn=(8, 8))


def test_uniform_config_rejects_d_model_when_not_divisible_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        EncoderConfig.uniform(10, d_model=30, n_heads=4)


def test_forward_gives_logits_of_batch_by_labels_when_layers_are_non_uniform():
    config = EncoderConfig(vocab_size=50, d_model=16, head_dim=4, heads=(4, 1, 2), ffn=(32, 5, 9),
                           num_labels=3, max_len=32)
    model = EncoderClassifier(config).eval()
    logits = model(torch.randint(1, 50, (2, 7)), torch.ones(2, 7, dtype=torch.long))
    assert logits.shape == (2, 3)
    assert [layer.attention.query.out_features for layer in model.layers] == [16, 4, 8]


def test_padding_does_not_change_logits_when_extra_pad_tokens_are_masked():
    torch.manual_seed(0)
    config = EncoderConfig.uniform(50, d_model=16, n_heads=4, ffn=32, n_layers=2, max_len=32)
    model = EncoderClassifier(config).eval()
    ids = torch.randint(1, 50, (1, 6))
    short = model(ids, torch.ones(1, 6, dtype=torch.long))
    padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 6), torch.zeros(1, 4)], dim=1).long()
    torch.testing.assert_close(model(padded_ids, mask), short, atol=1e-5, rtol=1e-5)


def test_config_json_round_trips_when_saved_and_read():
    config = EncoderConfig(vocab_size=50, d_model=16, head_dim=4, heads=(4, 1), ffn=(32, 5),
                           labels=("neg", "pos"))
    assert EncoderConfig.from_json(config.to_json()) == config


def test_config_from_json_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown encoder config keys"):
        EncoderConfig.from_json({"vocab_size": 5, "colour": "red"})
