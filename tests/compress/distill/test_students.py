import dataclasses

import pytest

from edgecompress.compress.distill import (
    DistillConfig,
    build_student,
    check_compatible,
    default_layer_map,
    resolve_plan,
)
from edgecompress.compress.models.arch import layers
from edgecompress.compress.prune import remove_heads
from edgecompress.errors import UserError
from tests.models import tiny_bert, tiny_plain


def test_layer_student_keeps_the_named_teacher_layers_when_spec_is_layers(teacher):
    student = build_student("layers:1", teacher)
    assert len(layers(student.loaded)) == 1 and len(layers(teacher)) == 2
    assert student.layer_map == ((0, 1),)
    kept, original = layers(student.loaded)[0], layers(teacher)[1]
    assert all((a == b).all() for a, b in zip(kept.state_dict().values(),
                                              original.state_dict().values()))


def test_fresh_student_has_the_asked_shape_when_spec_is_fresh(teacher):
    student = build_student("fresh:layers=1,hidden=16,heads=2,ffn=32", teacher)
    config = student.loaded.module.hf.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (1, 16, 2)
    assert student.loaded.labels == teacher.labels
    assert student.layer_map == ((0, 1),)


def test_build_student_raises_user_error_when_spec_names_missing_layers(teacher):
    with pytest.raises(UserError, match="subset of 0..1"):
        build_student("layers:0,4", teacher)


def test_default_layer_map_spreads_layers_when_student_is_shallower():
    assert default_layer_map(3, 6) == ((0, 1), (1, 3), (2, 5))
    assert default_layer_map(2, 2) == ((0, 0), (1, 1))


def test_check_compatible_raises_user_error_when_vocabularies_differ(teacher):
    from transformers import BertConfig, BertForSequenceClassification

    from edgecompress.compress.models.loading import ClassifierModule

    config = BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=4, intermediate_size=64)
    other = dataclasses.replace(teacher, module=ClassifierModule(BertForSequenceClassification(
        config)))
    with pytest.raises(UserError, match="different vocabularies"):
        check_compatible(teacher, other)


def test_check_compatible_raises_user_error_when_label_sets_differ(teacher):
    with pytest.raises(UserError, match="labels"):
        check_compatible(teacher, tiny_bert(num_labels=3))


def test_resolve_plan_raises_user_error_when_layer_map_names_missing_layers(teacher):
    student = build_student("layers:1", teacher)
    config = DistillConfig(hidden_weight=1.0, layer_map=((0, 7),))
    with pytest.raises(UserError, match="teacher layer 7"):
        resolve_plan(teacher, student, config)
    with pytest.raises(UserError, match="student layer 2"):
        resolve_plan(teacher, student, DistillConfig(hidden_weight=1.0, layer_map=((2, 1),)))


def test_resolve_plan_skips_attention_with_a_note_when_head_counts_differ(teacher):
    student = build_student("layers:0,1", teacher)
    remove_heads(student.loaded, {1: [0]})  # last layer: 3 heads vs the teacher's 4
    plan = resolve_plan(teacher, student, DistillConfig(attention_weight=1.0,
                                                        attention_layers="mapped"))
    assert plan.attention_pairs == ((0, 0),)
    assert any("3 vs 4 heads" in note for note in plan.notes)


def test_resolve_plan_raises_user_error_when_every_enabled_loss_is_skipped():
    plain = tiny_plain()
    student = build_student("layers:1", plain)
    config = DistillConfig(kd_weight=0, ce_weight=0, attention_weight=1.0)
    with pytest.raises(UserError, match="plain encoder"):
        resolve_plan(plain, student, config)


def test_config_raises_value_error_when_values_are_out_of_range():
    with pytest.raises(ValueError, match="temperature"):
        DistillConfig(temperature=0)
    with pytest.raises(ValueError, match="nothing to train"):
        DistillConfig(kd_weight=0, ce_weight=0)
    with pytest.raises(ValueError, match="twice"):
        DistillConfig(layer_map=((0, 1), (0, 2)))
