from __future__ import annotations

import copy

from edgecompress.compress.prune.gate import gate_verdict, speedup_gate
from tests.models import tiny_bert


def test_gate_measures_both_models_and_sees_no_size_gain_when_nothing_pruned():
    # Whether two equal models time alike depends on what else the CPU does meanwhile (the
    # verdict on timings is tested with fixed numbers below); the size must not move.
    model = tiny_bert()
    result = speedup_gate(model, copy.deepcopy(model), "x86-cpu", runs=30, warmup=3)
    assert result["size_ratio"] == 1.0 and result["size_gain"] is False
    assert [len(result["p50_ms_repeats"][k]) for k in ("before", "after")] == [2, 2]
    assert result["verdict"] == ("gain" if result["latency_gain"] else "no-gain")
    assert result["target"] == "x86-cpu"


def test_gain_when_latency_halves_beyond_noise():
    result = gate_verdict("x86-cpu", [10.0, 10.2], [5.0, 5.1], 1000, 1000)
    assert result["verdict"] == "gain" and result["latency_ratio"] < 0.55


def test_no_gain_when_latency_change_within_noise():
    result = gate_verdict("x86-cpu", [10.0, 10.1], [9.7, 9.8], 1000, 1000)
    assert result["verdict"] == "no-gain"


def test_no_gain_when_change_smaller_than_repeat_spread():
    result = gate_verdict("x86-cpu", [10.0, 14.0], [8.5, 8.6], 1000, 1000)  # 33 % jitter
    assert result["noise_threshold"] >= 0.3 and result["verdict"] == "no-gain"
