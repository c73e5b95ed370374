"""Per-op fidelity of the int8 TFLite vs its fp32 parent on real dev rows: SNR (dB) of every
op's output (dequantized) against the float tensor of the same name, and how much SNR each op
loses against its worst activation input. Groups by op type and by LayerNorm scope. SNR is over
all 128 positions of each row (padding included).

    per_op.py FP32.tflite INT8.tflite STUDENT_CKPT [ROWS] [OUT.json]
"""
import collections
import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.evaluation.evaluate import tokenize
from edgecompress.compress.models.loading import load_model

fp32, q, model = sys.argv[1], sys.argv[2], sys.argv[3]
ROWS = int(sys.argv[4]) if len(sys.argv) > 4 else 16
tok = load_model(model).tokenizer
dev = DataRef("rt-polarity").load().split("dev")
texts = list(dev.texts)[:ROWS]

def interp(path):
    it = Interpreter(model_path=path, experimental_preserve_all_tensors=True, num_threads=1)
    it.allocate_tensors()
    return it

fi, qi = interp(fp32), interp(q)
def by_name(it): return {d["name"]: d for d in it.get_tensor_details()}
fd, qd = by_name(fi), by_name(qi)
ops = qi._get_ops_details()
sig_f, sig_q = fi.get_signature_runner(), qi.get_signature_runner()
acc = collections.defaultdict(lambda: [0.0, 0.0])  # name -> [signal, noise]
for text in texts:
    b = tokenize(tok, [text], 128)
    pad = ((0, 0), (0, 128 - b["input_ids"].shape[1]))
    ids = np.pad(b["input_ids"], pad).astype(np.int32)
    mask = np.pad(b["attention_mask"], pad).astype(np.int32)
    sig_f(input_ids=ids, attention_mask=mask)
    sig_q(input_ids=ids, attention_mask=mask)
    for name, d in qd.items():
        if name not in fd or d["dtype"] not in (np.int8, np.int16, np.int32, np.float32):
            continue
        try:
            a = qi.get_tensor(d["index"])
            r = fi.get_tensor(fd[name]["index"])
        except ValueError:
            continue
        if a.shape != r.shape or r.dtype != np.float32:
            continue
        s, z = d["quantization"]
        deq = (a.astype(np.float64) - z) * s if s else a.astype(np.float64)
        acc[name][0] += float(np.sum(r.astype(np.float64) ** 2))
        acc[name][1] += float(np.sum((deq - r) ** 2))
snr = {n: 10 * np.log10(max(sig, 1e-30) / max(noi, 1e-30)) for n, (sig, noi) in acc.items()}
idx2name = {d["index"]: d["name"] for d in qi.get_tensor_details()}
rows = []
for op in ops:
    outs = [idx2name.get(i) for i in op["outputs"]]
    ins = [idx2name.get(i) for i in op["inputs"] if i >= 0]
    out_snr = [snr[n] for n in outs if n in snr]
    in_snr = [snr[n] for n in ins if n in snr and snr[n] < 200]
    if not out_snr:
        continue
    loss = (min(in_snr) - out_snr[0]) if in_snr else None
    rows.append({"op": op["op_name"], "out": outs[0], "snr": round(out_snr[0], 2),
                 "loss_db": None if loss is None else round(loss, 2),
                 "layernorm": "layernorm" in (outs[0] or "").lower().replace("_", "")})
by_type = collections.defaultdict(lambda: [0, 0.0])
for r in rows:
    if r["loss_db"] is not None and r["loss_db"] > 0:
        key = ("LN:" if r["layernorm"] else "") + r["op"]
        by_type[key][0] += 1
        by_type[key][1] += r["loss_db"]
ranked = sorted(by_type.items(), key=lambda kv: -kv[1][1])
out = {"rows": ROWS, "ops": rows, "loss_by_type": {k: [v[0], round(v[1], 2)] for k, v in ranked}}
target = sys.argv[5] if len(sys.argv) > 5 else "/work/exp/edgetpu/perop.json"
Path(target).write_text(json.dumps(out, indent=1))
print(json.dumps(out["loss_by_type"], indent=0))
for r in sorted([r for r in rows if r["loss_db"] is not None], key=lambda r: -r["loss_db"])[:25]:
    print(r)
print("final", rows[-1])
