"""Edge TPU levers on a demo run (docs/results/edgetpu.md): the full-integer TFLite artifact of a
student, quantized with N calibration rows (train split, real lengths, padded to 128), measured as
deployed: argmax agreement with torch on the 1,000 dev sentences (95 % Wilson interval), test
accuracy on the 2,000 test sentences and the paired delta to the run's teacher.

    levers.py STUDENT_CKPT N[,N...] TAG [MASK]

MASK overrides the padding value of the integer-friendly additive mask (the wrapper's own
otherwise: -20 for TFLite since these measurements; they ran with -100 unless MASK was given).
Paths: EDGETPU_OUT (results.jsonl, predictions; default /work/exp/edgetpu), EDGETPU_RUN (the
demo run whose teacher predictions are the reference; default /work/exp/demo-run).
"""
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.evaluation.artifacts import parity_sample
from edgecompress.compress.evaluation.evaluate import predict_as_deployed
from edgecompress.compress.models.loading import checkpoint_labels, load_model
from edgecompress.compress.quantize.calibration import calibration_set
from edgecompress.compress.quantize.integer import integer_friendly
from edgecompress.stats import paired_delta, wilson_interval
from edgecompress.targets import export, load_profile, torch_runner
from edgecompress.targets.quantize import QuantOptions, quantize_artifact
from edgecompress.targets.runtimes import load_runner

OUT = Path(os.environ.get("EDGETPU_OUT", "/work/exp/edgetpu"))
RUN = Path(os.environ.get("EDGETPU_RUN", "/work/exp/demo-run"))
LOG = OUT / "results.jsonl"
MODEL = sys.argv[1] if len(sys.argv) > 1 else str(RUN / "stages/vocab/checkpoint")
VARIANTS = sys.argv[2].split(",") if len(sys.argv) > 2 else ["256", "1024"]
TAG = sys.argv[3] if len(sys.argv) > 3 else "demo-student"

def log(rec):
    rec["time"] = time.strftime("%H:%M:%S")
    print(json.dumps(rec), flush=True)
    with LOG.open("a") as f:
        f.write(json.dumps(rec) + "\n")

torch.set_num_threads(1)
t0 = time.time()
loaded = load_model(MODEL)
tok = loaded.tokenizer
_, labels = checkpoint_labels(MODEL)
data = DataRef("rt-polarity").for_model(labels)
profile = load_profile("edgetpu")
module = integer_friendly(loaded.module, "tflite", parity_sample(tok, profile.seq_len))
MASK = float(sys.argv[4]) if len(sys.argv) > 4 else None
if MASK is not None:  # the integer-friendly additive mask's value for padding (default -100)
    import torch as _t
    module.mask_table = _t.tensor([MASK, 0.0])
dev, test, train = data.split("dev"), data.split("test"), data.split("train")
teacher = np.load(RUN / "teacher/predictions.npy")
tr = torch_runner(module)
torch_dev = predict_as_deployed(tr, tok, dev.texts).argmax(1)
tl = np.asarray(test.labels)
log({"tag": TAG, "what": "torch", "dev_acc": float(np.mean(torch_dev == np.asarray(dev.labels))),
     "s": round(time.time() - t0)})
tmp = Path(tempfile.mkdtemp(prefix="etpu-", dir=OUT))
base_profile = dataclasses.replace(profile, schemes=("fp32",), scheme="fp32")
base = export(module, parity_sample(tok, profile.seq_len), base_profile, tmp, name="fp32")
spec = profile.scheme_for("static-int8")
for v in VARIANTS:
    t1 = time.time()
    n = int(v.rstrip("f"))
    calib = calibration_set(train, tok, n, profile.seq_len, seed=0)
    opts = QuantOptions(calibration=calib.batches, method="minmax", module=module)
    dst = tmp / f"q{v}.tflite"
    info = quantize_artifact(base.path, dst, spec, opts, profile.fixed_shape)
    tq = time.time() - t1
    runner = load_runner(dst, threads=1)
    q_dev = predict_as_deployed(runner, tok, dev.texts).argmax(1)
    q_test = predict_as_deployed(runner, tok, test.texts).argmax(1)
    agree = int(np.sum(q_dev == torch_dev))
    lo, hi = wilson_interval(agree, len(dev))
    acc = float(np.mean(q_test == tl))
    alo, ahi = wilson_interval(int(np.sum(q_test == tl)), len(tl))
    d = paired_delta(tl, q_test, teacher)
    log({"tag": TAG, "what": f"calib{v}", "calib_rows": info.get("calibration_rows"),
         "dev_agreement": agree / len(dev), "dev_agreement_ci": [lo, hi], "n_dev": len(dev),
         "dev_acc": float(np.mean(q_dev == np.asarray(dev.labels))),
         "test_acc": acc, "test_acc_ci": [alo, ahi],
         "delta_teacher": d.delta, "delta_teacher_ci": list(d.ci95), "p": d.p_value,
         "quantize_s": round(tq), "s": round(time.time() - t1)})
    np.save(OUT / f"pred_{TAG}_{v}.npy", q_test)
