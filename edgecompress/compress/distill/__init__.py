"""Knowledge distillation: a student (pruned, layer-dropped, fresh, optionally fake-quantized)
learns from the fp32 teacher's logits, hidden states and attention distributions.

`run_distill` is the CLI stage; `distill_train` the resumable loop; the losses, student builders
and QAT helpers are usable on their own.
"""

from edgecompress.compress.lazy import lazy_exports

_WHERE = {  # public name -> the submodule defining it
    "DistillConfig": "config", "DistillRequest": "stage", "Features": "features",
    "LossPlan": "losses", "MANIFEST": "stage", "QATConfig": "qat", "Run": "loop",
    "Student": "students", "TrainData": "loop", "attention_kl": "losses",
    "build_student": "students", "check_compatible": "students", "default_layer_map": "students",
    "distill_loss": "losses", "distill_train": "loop", "forward_features": "features",
    "hidden_mse": "losses", "label_ce": "losses", "parse_layer_map": "config",
    "prepare_qat": "qat", "qat_config_for": "qat", "resolve_plan": "students",
    "run_distill": "stage", "soft_kl": "losses", "strip_fake_quant": "qat",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)
