"""Quantization-aware distillation: train the student through the int8 rounding its target uses.

Every `nn.Linear` is wrapped so that its weight passes through a per-channel (or per-tensor)
symmetric int8 `FakeQuantize` and its input through a per-tensor affine uint8 one, as ONNX
Runtime / LiteRT dynamic int8 quantize them. For a dynamic scheme activation ranges are taken
from the current batch (averaging constant 1), like the runtime does per call; for a static
scheme they are a moving average, like calibration. `strip_fake_quant` puts the plain Linear back
(float weights as trained), so the student goes through the ordinary exporters, the parity gate
and then the target's own int8 quantization.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.ao.quantization import (
    FakeQuantize,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
)

INT8_KINDS = ("dynamic", "static")


@dataclass(frozen=True)
class QATConfig:
    """How the target's int8 scheme quantizes: weights per channel or not, dynamic activations."""

    per_channel: bool = True
    dynamic_activations: bool = True
    scheme: str = "dynamic-int8"  # the target scheme this imitates, for the manifest

    def to_json(self) -> dict:
        return asdict(self)


def qat_config_for(profile, scheme: str | None = None) -> QATConfig:
    """The QAT settings matching `profile`'s int8 `scheme` (default: the profile's own, else its
    dynamic int8). Raises ValueError when that scheme is not an int8 weight+activation kind.
    """
    name = scheme or (profile.scheme if profile.scheme_for().kind in INT8_KINDS
                      else "dynamic-int8")
    spec = profile.scheme_for(name)
    if spec.kind not in INT8_KINDS:
        raise ValueError(f"QAT imitates int8 schemes ({', '.join(INT8_KINDS)}); target "
                         f"{profile.name} scheme {spec.name!r} is {spec.kind}")
    return QATConfig(per_channel=spec.per_channel, dynamic_activations=spec.kind == "dynamic",
                     scheme=spec.name)


class FakeQuantLinear(nn.Module):
    """nn.Linear whose input (B, ..., in) and weight (out, in) are fake-quantized to int8."""

    def __init__(self, linear: nn.Linear, config: QATConfig):
        super().__init__()
        self.linear = linear
        if config.per_channel:  # one scale per output row of the (out, in) weight
            weight_observer = MovingAveragePerChannelMinMaxObserver.with_args(
                ch_axis=0, qscheme=torch.per_channel_symmetric, dtype=torch.qint8)
        else:
            weight_observer = MovingAverageMinMaxObserver.with_args(
                qscheme=torch.per_tensor_symmetric, dtype=torch.qint8)
        # averaging_constant 1: the range of the weights as they are now, every step
        self.weight_fake_quant = FakeQuantize(weight_observer, quant_min=-127, quant_max=127,
                                              averaging_constant=1.0)
        constant = 1.0 if config.dynamic_activations else 0.01
        self.input_fake_quant = FakeQuantize(
            MovingAverageMinMaxObserver.with_args(qscheme=torch.per_tensor_affine,
                                                  dtype=torch.quint8),
            quant_min=0, quant_max=255, averaging_constant=constant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_fake_quant(self.linear.weight)
        return nn.functional.linear(self.input_fake_quant(x), weight, self.linear.bias)


def prepare_qat(module: nn.Module, config: QATConfig) -> int:
    """Wrap every nn.Linear under `module` in place; returns how many were wrapped."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, FakeQuantLinear(child, config))
            count += 1
        elif not isinstance(child, FakeQuantLinear):
            count += prepare_qat(child, config)
    return count


def strip_fake_quant(module: nn.Module) -> int:
    """Put each wrapped Linear back (float weights as trained); returns how many were unwrapped."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, FakeQuantLinear):
            setattr(module, name, child.linear)
            count += 1
        else:
            count += strip_fake_quant(child)
    return count


def has_fake_quant(module: nn.Module) -> bool:
    return any(isinstance(m, FakeQuantLinear) for m in module.modules())
