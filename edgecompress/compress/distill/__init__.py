"""Knowledge distillation: a student (pruned, layer-dropped, fresh, optionally fake-quantized)
learns from the fp32 teacher's logits, hidden states and attention distributions.

`run_distill` is the CLI stage; `distill_train` the resumable loop; the losses, student builders
and QAT helpers are usable on their own.
"""

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

__all__ = ["MANIFEST", "DistillConfig", "DistillRequest", "Features", "LossPlan", "QATConfig",
           "Run", "Student", "TrainData", "attention_kl", "build_student", "check_compatible",
           "default_layer_map", "distill_loss", "distill_train", "forward_features",
           "hidden_mse", "label_ce", "parse_layer_map", "prepare_qat", "qat_config_for",
           "resolve_plan", "run_distill", "soft_kl", "strip_fake_quant"]


def __getattr__(name: str):
    """Import a public name's module on first use: the package's configs (config.py) stay
    importable without torch, so the CLI can derive its flags from them at `--help` time."""
    import importlib

    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
