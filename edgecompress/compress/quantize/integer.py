"""Make a model integer-friendly before full-int8 calibration, and name its Transformer blocks.

transformers 5 builds a boolean attention mask that exports as Where(mask, 0, float-min):
calibration then gives it a useless scale and padding stops being masked (docs/design). The wrapper
here passes a bounded -100 additive mask instead, as the plain encoder does.
"""

from __future__ import annotations

import torch
from torch import nn

from edgecompress.compress.models.encoder import MASK_VALUE
from edgecompress.compress.models.modules import ClassifierModule
from edgecompress.targets.inputs import module_inputs

# The padding value of the integer-friendly additive mask, per format. The mask is added to the
# attention scores and the sum is ONE int8 tensor (the softmax input): its scale spans mask and
# scores alike. With -100 the demo's Edge TPU artifact had 0.43-0.49 per int8 step there (softmax
# output SNR 4-7 dB, the worst op); -20 masks as well (exp(-20) ~ 2e-9) at 0.11-0.18 per step.
# Accuracy, paired on the 2,000 test sentences (docs/results/edgetpu.md): +0.75 points [+0.1, +1.4]
# with the demo's 256 calibration rows, -0.25 [-1.0, +0.5] with 1,024: not established either
# way; kept for the resolution. ONNX QDQ (npu-int8) keeps -100 until it is measured there.
INTEGER_MASK_VALUES = {"tflite": -20.0}


class IntegerFriendlyClassifier(nn.Module):
    """An HF sequence classifier whose mask and embeddings quantize to integer ops.

    transformers 5 builds a boolean mask that exports as Where(mask, 0, float-min): calibration
    gives it a useless scale and padding stops being masked. Here the additive mask is a gather
    from the table [-100, 0] (int8-exact) passed as a ready 4D mask, and token embeddings are a
    gather too (EMBEDDING_LOOKUP stays float in ai-edge-quantizer's full-integer recipe).
    `.hf` is the wrapped model, as in ClassifierModule, so saving works unchanged.
    """

    def __init__(self, hf, gather_embeddings: bool = True, mask_value: float = MASK_VALUE):
        super().__init__()
        self.hf, self.gather_embeddings = hf, gather_embeddings
        self.register_buffer("mask_table", torch.tensor([mask_value, 0.0]), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        additive = self.mask_table[attention_mask.long()][:, None, None, :]  # (B, 1, 1, S)
        if not self.gather_embeddings:
            return self.hf(input_ids=input_ids, attention_mask=additive).logits
        embeddings = self.hf.get_input_embeddings().weight[input_ids.long()]  # (B, S, H)
        return self.hf(inputs_embeds=embeddings, attention_mask=additive).logits


def integer_friendly(module: nn.Module, fmt: str = "tflite",
                     sample: dict | None = None) -> nn.Module:
    """Wrap an HF classifier (ClassifierModule) as IntegerFriendlyClassifier; others unchanged.

    The plain encoder already uses a -100 additive mask. ONNX keeps its Gather embedding (ORT's
    QDQ quantizer handles Gather, not the GatherND an indexing op exports to). With `sample`
    (padded input_ids / attention_mask arrays) the wrapper is kept only if it gives the model's
    own logits: a family that reads its mask as booleans (DeBERTa-v2) would see the -100 / 0 mask
    inverted, and the parity gate, which compares against this module, could not tell.
    """
    if not isinstance(module, ClassifierModule):
        return module
    wrapped = IntegerFriendlyClassifier(module.hf, gather_embeddings=fmt == "tflite",
                                        mask_value=INTEGER_MASK_VALUES.get(fmt, MASK_VALUE)).eval()
    if sample is not None and not same_logits(module, wrapped, sample):
        return module
    return wrapped


def same_logits(original: nn.Module, other: nn.Module, sample: dict,
                tolerance: float = 1e-3) -> bool:
    """Whether `other` gives `original`'s logits on `sample`, within `tolerance` relative to
    their magnitude (a -100 instead of a float-min mask moves them by ~1e-6)."""
    args = tuple(torch.as_tensor(sample[name]) for name in module_inputs(original))
    with torch.no_grad():
        reference, candidate = original.eval()(*args), other(*args)
    scale = max(1.0, float(reference.abs().max()))
    return float((reference - candidate).abs().max()) <= tolerance * scale


def encoder_layers(module: nn.Module) -> list[str]:
    """Qualified names of the Transformer blocks (`hf.bert.encoder.layer.3`, `layers.1`)."""
    for name, child in module.named_modules():
        if isinstance(child, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers"):
            return [f"{name}.{i}" for i in range(len(child))]
    return []


def target_applicability(loaded) -> dict[str, str]:
    """{target: "yes" or why not} for every built-in target profile: an integer-only target
    refuses a graph that still writes float-min after the integer-friendly wrapper (preflight);
    a target whose optional extra is not installed says how to install it."""
    from edgecompress.compress.evaluation.artifacts import parity_sample
    from edgecompress.errors import ParityError
    from edgecompress.targets import list_profiles
    from edgecompress.targets.extras import needs
    from edgecompress.targets.preflight import check_integer_graph

    verdicts = {}
    for profile in list_profiles():
        missing = needs(profile.format)
        if missing and not missing.endswith("(installed)"):  # an optional extra, not installed
            verdicts[profile.name] = f"needs {missing}"
            continue
        sample = parity_sample(loaded.tokenizer, profile.seq_len)
        try:
            module = integer_friendly(loaded.module, profile.format, sample) \
                if profile.integer_only else loaded.module
            unchecked = check_integer_graph(module, sample, profile)
            verdicts[profile.name] = ("yes" if unchecked is None else
                                      f"not checked before converting: {unchecked}")
        except ParityError as err:
            verdicts[profile.name] = str(err).split(": ", 1)[-1]
    return verdicts
