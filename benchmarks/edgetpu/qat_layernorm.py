"""Short QAT fine-tune of the demo student whose fake quantization mirrors the full-integer TFLite
graph: every Linear (per-channel int8 weights, int8 input, moving-average ranges) and every
LayerNorm decomposed as litert-torch lowers it (batch_norm_training -> MEAN, SQUARED_DIFFERENCE,
MEAN, ADD eps, RSQRT, SUB, MUL, MUL gamma, ADD beta), each intermediate fake-quantized to int8 per
tensor, its range calibrated on the float values as the converter does. KD from the fp32 teacher
(T=2) + 0.5 CE on labels, dropout off, batch 16, AdamW. Saves the stripped (float) student.

    qat_layernorm.py STUDENT_CKPT OUT STEPS LR MODE(ln+linear|ln) BUDGET_SECONDS
"""
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.distill.qat import QATConfig, prepare_qat, strip_fake_quant
from edgecompress.compress.evaluation.evaluate import tokenize
from edgecompress.compress.models.loading import checkpoint_labels, load_model, save_model

STUDENT, OUT = sys.argv[1], Path(sys.argv[2])
STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 300
LR = float(sys.argv[4]) if len(sys.argv) > 4 else 2e-5
MODE = sys.argv[5] if len(sys.argv) > 5 else "ln+linear"   # or "ln"
BUDGET = float(sys.argv[6]) if len(sys.argv) > 6 else 1e9  # wall seconds of training
TEACHER = os.environ.get("EDGETPU_TEACHER", "/work/exp/cache/teachers/minilm-l6-01598ab563ce")
torch.manual_seed(0)
random.seed(0)
torch.set_num_threads(1)

def fq():
    return FakeQuantize(MovingAverageMinMaxObserver.with_args(qscheme=torch.per_tensor_affine,
                        dtype=torch.qint8), quant_min=-128, quant_max=127, averaging_constant=0.01)

class FQLayerNorm(nn.Module):
    """LayerNorm as the int8 TFLite graph computes it: each intermediate rounded to int8 with a
    range calibrated on FLOAT values (the converter calibrates the fp32 model), values from the
    quantized chain
    a quantized variance of 0 gives rsqrt clamped at its calibrated max, as the
    int8 RSQRT saturates."""
    NAMES = ("mean", "sqdiff", "var", "var_eps", "rstd", "centered", "normed", "scaled", "out")
    def __init__(self, ln: nn.LayerNorm):
        super().__init__()
        self.ln = ln
        self.q = nn.ModuleDict({n: fq() for n in self.NAMES})
    def _q(self, name, flt, val):
        obs = self.q[name].activation_post_process
        if self.training:
            obs(flt.detach())
        scale, zp = obs.calculate_qparams()
        return torch.fake_quantize_per_tensor_affine(val, float(scale), int(zp), -128, 127)
    def forward(self, x):
        eps, w, b = self.ln.eps, self.ln.weight, self.ln.bias
        f_mean = x.mean(-1, keepdim=True)
        f_cen = x - f_mean
        f_var = (f_cen ** 2).mean(-1, keepdim=True)
        f_rstd = torch.rsqrt(f_var + eps)
        f_norm = f_cen * f_rstd
        f_scaled = f_norm * w
        f_out = f_scaled + b
        mean = self._q("mean", f_mean, f_mean)
        sq = self._q("sqdiff", f_cen ** 2, (x - mean) ** 2)
        var = self._q("var", f_var, sq.mean(-1, keepdim=True))
        ve = self._q("var_eps", f_var + eps, var + eps)
        rstd = self._q("rstd", f_rstd, torch.rsqrt(ve.clamp_min(1e-12)))  # clamps to its range
        cen = self._q("centered", f_cen, x - mean)
        normed = self._q("normed", f_norm, cen * rstd)
        scaled = self._q("scaled", f_scaled, normed * w)
        return self._q("out", f_out, scaled + b)


def wrap_ln(m):
    n = 0
    for name, child in list(m.named_children()):
        if isinstance(child, nn.LayerNorm):
            setattr(m, name, FQLayerNorm(child))
            n += 1
        else:
            n += wrap_ln(child)
    return n

def unwrap_ln(m):
    for name, child in list(m.named_children()):
        if isinstance(child, FQLayerNorm):
            setattr(m, name, child.ln)
        else:
            unwrap_ln(child)

t0 = time.time()
student, teacher = load_model(STUDENT), load_model(TEACHER)
_, labels = checkpoint_labels(STUDENT)
data = DataRef("rt-polarity").for_model(labels)
train = data.split("train")
texts, ys = list(train.texts), np.asarray(train.labels)
model = student.module
n_ln = wrap_ln(model)
n_lin = prepare_qat(model, QATConfig(per_channel=True, dynamic_activations=False,
                                     scheme="static-int8")) if "linear" in MODE else 0
teacher.module.eval()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=0.0)
order = list(range(len(texts)))
random.shuffle(order)
B, T = 16, 2.0
INPUTS = ("input_ids", "attention_mask")
t_train = time.time()
model.train()
# dropout off: a short fine-tune of a trained student; the fake-quant observers still update
for m in model.modules():
    if isinstance(m, nn.Dropout):
        m.p = 0.0
losses = []
for step in range(STEPS):
    if time.time() - t_train > BUDGET:
        break
    idx = [order[(step * B + i) % len(order)] for i in range(B)]
    batch_t = [texts[i] for i in idx]
    s_in = tokenize(student.tokenizer, batch_t, 64)
    t_in = tokenize(teacher.tokenizer, batch_t, 64)
    with torch.no_grad():
        t_logits = teacher.module(*(torch.as_tensor(t_in[k]) for k in INPUTS))
    s_logits = model(*(torch.as_tensor(s_in[k]) for k in INPUTS))
    kd = nn.functional.kl_div(nn.functional.log_softmax(s_logits / T, -1),
                              nn.functional.softmax(t_logits / T, -1),
                              reduction="batchmean") * T * T
    ce = nn.functional.cross_entropy(s_logits, torch.as_tensor(ys[idx]))
    loss = kd + 0.5 * ce
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(float(loss))
    if step % 10 == 0:
        print(json.dumps({"step": step, "loss": round(float(np.mean(losses[-25:])), 4),
                          "s": round(time.time() - t0)}), flush=True)
model.eval()
strip_fake_quant(model)
unwrap_ln(model)
save_model(student, OUT)
print(json.dumps({"done": str(OUT), "ln_wrapped": n_ln, "linear_wrapped": n_lin,
                  "steps": step + 1, "batch": B,
                  "lr": LR, "mode": MODE, "s": round(time.time() - t0)}), flush=True)
