"""ExecuTorch artifacts (`.pte`, XNNPACK delegate): lower a torch module, quantized in torch first
when the scheme asks, and run it with `executorch.runtime`.

Export: `torch.export.export` -> `to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])`
-> `.to_executorch().buffer`. Shapes ("dynamic-seq"): exactly the profile's `batch` rows, any
sequence length up to its `seq_len` (`torch.export.Dim`); ExecuTorch plans memory for the longest.
On the RT MiniLM teacher (fp32, 1 thread, b1 s128, 2-core EPYC) the dynamic-seq program timed
like the static 1 x 128 one (31.9 / 33.7 vs 30.3 / 31.9 ms, shared host) and ran a real-length
27-token sentence in 6.9 ms; a batch bound of 32 instead of 1 cost ~70 MB more RSS.

dynamic-int8: XNNPACKQuantizer with symmetric per-channel int8 weights and dynamic int8
activations (`prepare_pt2e`, one forward, `convert_pt2e`: ExecuTorch's XNNPACK tutorial); the
embedding tables stay fp32 (MiniLM: 58.8 MB vs 90.9 MB fp32).

The runner is targets/runtimes.py's ExecuTorch backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.extras import require
from edgecompress.targets.inputs import is_image, pad_rows
from edgecompress.targets.runtime_util import package_version, quiet_fd2
from edgecompress.targets.runtimes import INPUT_NAMES, PAD_ID

EXPORTER = "executorch (torch.export + XnnpackPartitioner)"
QUANTIZER = "XNNPACKQuantizer (torchao pt2e prepare_pt2e/convert_pt2e)"
MIN_SEQ = 2  # [CLS] and [SEP] / <s> and </s>: no tokenized input is shorter


def lower(module, sample: dict, profile, path: Path, spec, quant=None) -> tuple[str, str, dict]:
    """Write `module` as an XNNPACK-delegated .pte for `profile` in scheme `spec` to `path`.

    `sample` holds int64 (B, S) `input_ids` / `attention_mask`, S <= the profile's seq_len, or
    float32 (B, C, H, W) `pixel_values` (exported at exactly the profile's batch).
    Returns (exporter, version, quantization facts or None for fp32). Raises UserError when
    ExecuTorch is not installed or layers are asked to stay float (not available for pte).
    """
    require("pte", f"target {profile.name}")
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if quant is not None and quant.float_scopes:
        raise UserError(f"target {profile.name}: keeping layers in float (the accuracy "
                        f"fallback, max_drop) is not available for pte artifacts")
    if is_image(sample):  # pixels: one fixed (batch, C, H, W) input
        args = (torch.from_numpy(pad_rows(sample, profile.batch)["pixel_values"]),)
        dynamic = None
    else:
        args = _example(sample, profile.batch)
        seq = torch.export.Dim("seq", min=MIN_SEQ, max=profile.seq_len)
        dynamic = ({1: seq}, {1: seq})  # (batch, seq) each: batch fixed, seq up to seq_len
    info = None
    with quiet_fd2():
        if spec.quantized:
            module, info = _dynamic_int8(module, args, dynamic)
        program = torch.export.export(module, args, dynamic_shapes=dynamic)
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        path.write_bytes(lowered.to_executorch().buffer)
    return EXPORTER, package_version("executorch"), info


def _example(sample: dict, batch: int) -> tuple:
    """Tracing inputs: exactly `batch` rows (cycled), int64 (batch, S) with S >= MIN_SEQ."""
    import torch

    ids, mask = (np.asarray(sample[n], dtype=np.int64) for n in INPUT_NAMES)
    rows = np.resize(np.arange(len(ids)), batch)
    pad = ((0, 0), (0, max(0, MIN_SEQ - ids.shape[1])))
    return (torch.from_numpy(np.pad(ids[rows], pad, constant_values=PAD_ID)),
            torch.from_numpy(np.pad(mask[rows], pad)))


def _dynamic_int8(module, args: tuple, dynamic: tuple):
    """(quantized graph module, facts): per-channel int8 weights, dynamic int8 activations."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    graph = torch.export.export(module, args, dynamic_shapes=dynamic).module()
    prepared = prepare_pt2e(graph, quantizer)
    restored = restore_int_constants(prepared)
    prepared(*args)  # dynamic activations: one pass runs the (weight) observers
    converted = convert_pt2e(prepared)
    restored += restore_int_constants(converted)
    return converted, {"tool": QUANTIZER, "symmetric": True, "activations": "dynamic int8",
                       "embeddings": "fp32", "int_constants_restored": len(restored)}


def restore_int_constants(graph_module) -> list[str]:
    """prepare_pt2e (torchao 0.18) turns integer scalars into float32 tensor constants; in
    transformers 5's mask code `arange(seq) + 0` then becomes float and `aten.index` fails
    ("tensors used as indices must be long ..."). Cast each such constant back to the integer
    dtype of the tensor it is combined with; returns the names fixed."""
    import torch

    fixed = []
    for node in graph_module.graph.nodes:
        if node.op != "get_attr" or not str(node.target).startswith("_tensor_constant"):
            continue
        value = getattr(graph_module, node.target)
        for user in node.users:
            ints = [a.meta["val"].dtype for a in user.args
                    if isinstance(a, torch.fx.Node) and a is not node and "val" in a.meta
                    and not a.meta["val"].is_floating_point()]
            if ints and value.is_floating_point():
                setattr(graph_module, node.target, value.to(ints[0]))
                fixed.append(str(node.target))
                break
    return fixed
