"""Quantization schemes: what each artifact format can produce, and its default parity gate.

Data, not code: `SCHEMES[format][name]`. Adding a scheme is adding it here and teaching
targets/quantize.py (or, for formats quantized in torch, the format's exporter); profiles naming
anything else are refused when loaded (targets/profiles.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scheme:
    """How one format stores and runs a model, and how close to torch its artifacts must be.

    `tolerance` / `min_agreement` are the default parity gate for the scheme (max |logit diff|
    and argmax agreement on the verification sample); a profile can override them per scheme.
    """

    name: str
    kind: str  # "fp32" | "dynamic" | "weight-only" | "static" | "fp16"
    tolerance: float
    min_agreement: float
    per_channel: bool = True  # weights quantized per output channel (int8 kinds)
    description: str = ""
    # int8 kinds: relative L2 error of the outputs, ||artifact - torch|| / ||torch||, over the
    # real sample; with `min_agreement` it is their gate (max |diff| is reported, not gated:
    # it grows with the logits' scale and says little about an int8 model)
    max_rel_error: float = 1e-3
    # bits of the embedding tables' weights (the token embedding is the largest tensor of a small
    # encoder); 4: blockwise int4 over the hidden axis, blocks of EMBEDDING_BLOCK (ONNX only)
    embedding_bits: int = 8
    # sentence encoders (mean-pooled embedding outputs): every row's cosine to torch must reach
    # this; it replaces argmax agreement, which means nothing for an embedding vector
    min_cosine: float = 0.9999
    # bits of the calibrated activations of a static scheme: 16 for NPUs that run int16
    # activations with int8 weights ("a16w8"), 8 everywhere else
    activation_bits: int = 8

    @property
    def int8(self) -> bool:
        return self.kind in ("dynamic", "weight-only", "static")

    @property
    def calibrated(self) -> bool:
        """True when activations get fixed ranges from calibration samples."""
        return self.kind == "static"

    @property
    def quantized(self) -> bool:
        return self.kind != "fp32"


def _schemes(*schemes: Scheme) -> dict[str, Scheme]:
    return {s.name: s for s in schemes}


# Schemes each format can produce, as data. Adding a scheme is adding it here and teaching
# targets/quantize.py; profiles naming anything else are refused when loaded. Tolerances: int8
# logits do not match fp32 to 1e-4; the bounds below are the largest |diff| measured on the RT
# teacher (logits span about +-4) with margin, and the argmax must still mostly agree.
# min_cosine (sentence encoders, every row of the sample): the MiniLM layers:1,3,5 student at
# ONNX dynamic-int8 (per tensor) measured a lowest row cosine of 0.974 (argmax agreement 76 %,
# which is why embeddings are not gated on argmax); 0.95 leaves margin for per-tensor int8.
SCHEMES: dict[str, dict[str, Scheme]] = {
    "onnx": _schemes(
        Scheme("fp32", "fp32", 1e-4, 1.0, description="float32, as exported"),
        Scheme("fp16", "fp16", 5e-2, 1.0, min_cosine=0.999,
               description="float16 weights and compute, fp32 I/O"),
        Scheme("dynamic-int8", "dynamic", 1.0, 0.95, per_channel=False, max_rel_error=0.25,
               min_cosine=0.95,
               description="int8 weights per tensor, activations quantized at run time"),
        Scheme("dynamic-int8-per-channel", "dynamic", 1.0, 0.95, max_rel_error=0.25,
               min_cosine=0.95,
               description="int8 weights per output channel, activations at run time"),
        Scheme("dynamic-int8-int4-embedding", "dynamic", 1.0, 0.95, max_rel_error=0.25,
               min_cosine=0.95,
               embedding_bits=4,
               description="int8 weights per output channel, activations at run time; "
                           "embeddings int4 in blocks of 32 (GatherBlockQuantized)"),
        Scheme("static-int8", "static", 2.0, 0.90, max_rel_error=0.5, min_cosine=0.9,
               description="QDQ int8 weights (per channel) and calibrated int8 activations"),
        # a16w8: the demo student's full-integer error fell from rel 0.16 (int8 activations) to
        # 0.025 (99.25 % argmax agreement on 400 RT test sentences); the gate keeps a margin
        Scheme("static-a16w8", "static", 1.0, 0.95, max_rel_error=0.1, min_cosine=0.99,
               activation_bits=16,
               description="QDQ int8 weights (per channel) and calibrated int16 activations, "
                           "for NPUs with 16-bit activations (opset 21)"),
    ),
    "tflite": _schemes(
        Scheme("fp32", "fp32", 1e-4, 1.0, description="float32, as converted"),
        Scheme("fp16", "fp16", 5e-2, 1.0, min_cosine=0.999,
               description="float16 weights, float compute"),
        Scheme("dynamic-int8", "dynamic", 1.0, 0.95, max_rel_error=0.25, min_cosine=0.95,
               description="int8 weights per channel, activations quantized at run time"),
        Scheme("weight-only-int8", "weight-only", 0.5, 0.95, max_rel_error=0.15, min_cosine=0.98,
               description="int8 weights dequantized before float compute"),
        Scheme("static-int8", "static", 2.0, 0.90, max_rel_error=0.5, min_cosine=0.9,
               description="full-integer: int8 weights and calibrated int8 activations"),
    ),
    # ExecuTorch + XNNPACK: the scheme is applied to the torch graph (pt2e) before lowering.
    # Gates as TFLite's dynamic int8 (the same per-channel int8 weights, int8 activations at run
    # time); a tiny random BERT measured rel error ~0.01.
    "pte": _schemes(
        Scheme("fp32", "fp32", 1e-4, 1.0, description="float32, lowered to XNNPACK"),
        Scheme("dynamic-int8", "dynamic", 1.0, 0.95, max_rel_error=0.25, min_cosine=0.95,
               description="int8 weights per channel (XNNPACKQuantizer), activations "
                           "quantized at run time; embeddings stay fp32"),
    ),
    # OpenVINO IR: NNCF post-training int8 of the fp32 IR (static: calibrated activation ranges).
    # Gated like ONNX dynamic int8: NNCF int8 of the demo's fp32 student (f32 hint) agreed with
    # torch on 99.5 % of the 2,000 RT test sentences at relative error 0.042.
    "openvino": _schemes(
        Scheme("fp32", "fp32", 1e-4, 1.0, description="float32 weights, as converted"),
        Scheme("nncf-int8", "static", 1.0, 0.95, max_rel_error=0.25, min_cosine=0.95,
               description="NNCF post-training int8 (model_type=TRANSFORMER): int8 weights "
                           "per channel and calibrated int8 activations"),
    ),
}
