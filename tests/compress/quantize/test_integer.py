"""The integer-friendly wrapper: a bounded additive mask that keeps HF outputs."""

import numpy as np

from edgecompress.compress.quantize.integer import IntegerFriendlyClassifier, encoder_layers
from edgecompress.targets import torch_runner
from tests.models import batch, tiny_bert
from tests.targets.conftest import needs_executorch


def test_integer_friendly_wrapper_matches_hf_when_rows_are_padded():
    loaded = tiny_bert()
    wrapped = IntegerFriendlyClassifier(loaded.module.hf).eval()
    inputs = batch(loaded)  # "dull" is padded
    out = torch_runner(wrapped).run(**inputs)
    np.testing.assert_allclose(out, torch_runner(loaded.module).run(**inputs), atol=1e-5)
    real = int(inputs["attention_mask"][3].sum())
    alone = torch_runner(wrapped).run(inputs["input_ids"][3:, :real],
                                      inputs["attention_mask"][3:, :real])
    np.testing.assert_allclose(out[3:], alone, atol=1e-5)
    assert encoder_layers(wrapped) == ["hf.bert.encoder.layer.0", "hf.bert.encoder.layer.1"]


def test_integer_friendly_keeps_the_model_when_the_wrapper_would_change_its_logits():
    from edgecompress.compress.models.modules import ClassifierModule
    from edgecompress.compress.quantize.integer import integer_friendly, same_logits
    from tests.models import tiny_family

    bert, deberta = tiny_bert(), tiny_family("deberta-v2")
    assert isinstance(integer_friendly(bert.module, "tflite", batch(bert)),
                      IntegerFriendlyClassifier)
    # DeBERTa-v2 reads the mask as booleans: -100 / 0 would mask the real tokens instead
    wrapped = IntegerFriendlyClassifier(deberta.module.hf).eval()
    assert not same_logits(deberta.module, wrapped, batch(deberta))
    kept = integer_friendly(deberta.module, "tflite", batch(deberta))
    assert isinstance(kept, ClassifierModule) and kept is deberta.module


@needs_executorch  # every built-in target says "yes" only where its optional extra is installed
def test_target_applicability_names_the_blocking_op_when_a_family_cannot_go_integer_only():
    from edgecompress.compress.quantize.integer import target_applicability
    from tests.models import tiny_family

    assert set(target_applicability(tiny_bert()).values()) == {"yes"}
    deberta = target_applicability(tiny_family("deberta-v2"))
    assert deberta["x86-cpu"] == deberta["arm64-phone"] == "yes"
    assert "SELECT_V2" in deberta["edgetpu"] and "deberta-v2" in deberta["edgetpu"]


def test_integer_friendly_masks_with_minus_20_for_tflite_when_the_logits_stay_the_same():
    from edgecompress.compress.models.encoder import MASK_VALUE
    from edgecompress.compress.quantize.integer import integer_friendly

    loaded = tiny_bert()
    tflite = integer_friendly(loaded.module, "tflite", batch(loaded))
    onnx = integer_friendly(loaded.module, "onnx", batch(loaded))
    # the softmax input's int8 scale spans the mask: -20 leaves the scores 3-4x the resolution
    assert tflite.mask_table.tolist() == [-20.0, 0.0]
    assert onnx.mask_table.tolist() == [MASK_VALUE, 0.0]
    out = torch_runner(tflite).run(**batch(loaded))
    np.testing.assert_allclose(out, torch_runner(loaded.module).run(**batch(loaded)), atol=1e-5)
