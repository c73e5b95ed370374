"""Knowledge distillation: a student (pruned, layer-dropped, fresh, optionally fake-quantized)
learns from the fp32 teacher's logits, hidden states and attention distributions.

`run_distill` is the CLI stage; `distill_train` the resumable loop; the losses, student builders
and QAT helpers are usable on their own.
"""

from edgecompress.compress.distill.config import DistillConfig, parse_layer_map
from edgecompress.compress.distill.features import Features, forward_features
from edgecompress.compress.distill.loop import Run, TrainData, distill_train
from edgecompress.compress.distill.losses import (LossPlan, attention_kl, distill_loss,
                                                  hidden_mse, label_ce, soft_kl)
from edgecompress.compress.distill.qat import (QATConfig, prepare_qat, qat_config_for,
                                               strip_fake_quant)
from edgecompress.compress.distill.stage import MANIFEST, DistillRequest, run_distill
from edgecompress.compress.distill.students import (Student, build_student, check_compatible,
                                                    default_layer_map, resolve_plan)

__all__ = ["MANIFEST", "DistillConfig", "DistillRequest", "Features", "LossPlan", "QATConfig",
           "Run", "Student", "TrainData", "attention_kl", "build_student", "check_compatible",
           "default_layer_map", "distill_loss", "distill_train", "forward_features",
           "hidden_mse", "label_ce", "parse_layer_map", "prepare_qat", "qat_config_for",
           "resolve_plan", "run_distill", "soft_kl", "strip_fake_quant"]
