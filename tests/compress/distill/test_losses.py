import copy

import torch

from edgecompress.compress.distill import (
    attention_kl,
    forward_features,
    hidden_mse,
    label_ce,
    soft_kl,
)
from tests.models import batch, tiny_plain


def _features(loaded):
    inputs = batch(loaded)
    ids, mask = torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"])
    with torch.no_grad():
        return forward_features(loaded, ids, mask, hidden=True,
                                attentions=loaded.kind == "hf"), mask


def test_soft_kl_is_zero_when_student_equals_teacher(teacher):
    features, _ = _features(teacher)
    student, _ = _features(copy.deepcopy(teacher))
    assert float(soft_kl(student.logits, features.logits, 2.0)) == 0.0


def test_soft_kl_is_positive_and_scaled_by_t_squared_when_logits_differ():
    student, teacher = torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, -1.0]])
    assert float(soft_kl(student, teacher, 1.0)) > 0.1
    kl_t2 = torch.nn.functional.kl_div(torch.log_softmax(student / 2, -1),
                                       torch.log_softmax(teacher / 2, -1), log_target=True,
                                       reduction="batchmean")
    torch.testing.assert_close(soft_kl(student, teacher, 2.0), 4 * kl_t2)


def test_label_ce_is_near_zero_when_logits_are_confident_and_right():
    logits = torch.tensor([[20.0, -20.0], [-20.0, 20.0]])
    assert float(label_ce(logits, torch.tensor([0, 1]))) < 1e-6
    assert float(label_ce(logits, torch.tensor([1, 0]))) > 10


def test_hidden_mse_is_zero_when_student_equals_teacher(teacher):
    features, mask = _features(teacher)
    pairs = [(0, 0), (1, 1)]
    assert float(hidden_mse(features.hidden, features.hidden, pairs, {}, mask)) == 0.0


def test_hidden_mse_ignores_padding_when_only_padded_positions_differ(teacher):
    features, mask = _features(teacher)
    noisy = [h + 5.0 * (1 - mask[..., None].float()) for h in features.hidden]  # pads only
    assert mask.min() == 0
    assert float(hidden_mse(noisy, features.hidden, [(0, 0)], {}, mask)) == 0.0


def test_hidden_mse_uses_the_projection_when_widths_differ(teacher):
    features, mask = _features(teacher)
    narrow = [h[..., :16] for h in features.hidden]  # (B, S, 16) vs the teacher's 32
    projection = torch.nn.Linear(16, 32, bias=False)
    with torch.no_grad():
        projection.weight.zero_()
        projection.weight[:16, :16] = torch.eye(16)
    teacher_half = [torch.cat([h[..., :16], torch.zeros_like(h[..., 16:])], -1)
                    for h in features.hidden]
    loss = hidden_mse(narrow, teacher_half, [(1, 1)], {"1": projection}, mask)
    assert float(loss.detach()) < 1e-12


def test_attention_kl_is_zero_when_student_equals_teacher(teacher):
    features, mask = _features(teacher)
    assert len(features.attentions) == 2 and features.attentions[0].shape[1] == 4
    loss = attention_kl(features.attentions, features.attentions, [(0, 0), (1, 1)], mask)
    assert abs(float(loss)) < 1e-6
    other = attention_kl(features.attentions, features.attentions, [(0, 1)], mask)
    assert float(other) > 1e-4


def test_plain_encoder_features_give_one_hidden_state_per_layer_when_hooked():
    loaded = tiny_plain()
    features, mask = _features(loaded)
    assert len(features.hidden) == 2 and features.hidden[0].shape[:2] == mask.shape
    assert float(hidden_mse(features.hidden, features.hidden, [(0, 0)], {}, mask)) == 0.0
