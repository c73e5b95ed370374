"""The family matrix's distill and edgetpu columns: every family distills into a smaller student
(layer-dropped and head/FFN-pruned where the family can be cut, a fresh narrower one where it
cannot) that saves and reloads, and every family exports full-integer for the Edge TPU through
the parity gate — or is refused by preflight before converting, in one line naming the op."""

from __future__ import annotations

import pytest
import torch

from edgecompress.compress.distill import (
    DistillConfig,
    Run,
    TrainData,
    build_student,
    distill_loss,
    distill_train,
    forward_features,
    resolve_plan,
)
from edgecompress.compress.distill.students import depth, make_projections
from edgecompress.compress.evaluation.evaluate import tokenize
from edgecompress.compress.models.arch import FAMILIES
from edgecompress.compress.models.loading import load_model, save_model
from edgecompress.compress.prune.surgery import layer_shapes, remove_heads, remove_neurons
from edgecompress.compress.training.train import FinetuneConfig
from edgecompress.targets.preflight import PreflightError
from tests.compress.distill.conftest import LABELS, TEXTS
from tests.compress.prune.conftest import logits
from tests.models import FAMILY_NAMES, batch, save_tiny, tiny_family

# Families whose integer-only export preflight refuses, and the op it names.
EDGETPU_REFUSED = {"deberta-v2": "SELECT_V2"}
FRESH = "fresh:layers=1,hidden=16,heads=2,ffn=32"  # narrower: hidden states go through a projection


def _head(loaded) -> torch.nn.Linear:
    """The classifier's last Linear (the logits)."""
    return [m for m in loaded.module.hf.modules() if isinstance(m, torch.nn.Linear)][-1]


def _teacher(name: str):
    """A tiny family model with a scaled-up classifier, so its soft labels carry signal."""
    loaded = tiny_family(name)
    with torch.no_grad():
        _head(loaded).weight.mul_(30.0)
    return loaded


def _student(name: str, teacher):
    """Layer 0 only (mapped onto teacher layer 1), one head and three FFN neurons cut, a fresh
    classifier; a fresh narrower student for the
    families whose layers cannot be cut (MobileBERT, ModernBERT)."""
    torch.manual_seed(0)
    if FAMILIES[name].prunable:
        return build_student(FRESH, teacher)
    student = build_student("layers:0", teacher)
    remove_heads(student.loaded, {0: [1]})
    remove_neurons(student.loaded, {0: [0, 5, 9]})
    _head(student.loaded).reset_parameters()  # a fresh head: the soft labels must be learnt
    for module in student.loaded.module.modules():  # a few steps: let the loss, not noise, move
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return student


def _loss(run) -> float:
    """The distillation loss (KD + hidden-state MSE) on the fixed tiny batch, no gradient."""
    inputs = tokenize(run.teacher.tokenizer, TEXTS[:8], 64)  # what it trains on
    ids, mask = torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"])
    hidden = bool(run.plan.hidden_pairs)
    with torch.no_grad():
        t = forward_features(run.teacher, ids, mask, hidden=hidden)
        s = forward_features(run.student, ids, mask, hidden=hidden)
        loss, _ = distill_loss(s, t, t.logits.argmax(-1), mask, run.config, run.plan,
                               run.projections)
    return float(loss)


def _distill(name: str, epochs: int, ckpt):
    """(run, KL before, result): KD + hidden-state MSE on the layer map (1 student layer ->
    teacher layer 1), a projection when the widths differ."""
    teacher = _teacher(name)
    student = _student(name, teacher)
    train = FinetuneConfig(epochs=epochs, batch_size=8, learning_rate=3e-3, checkpoint_every=1000,
                           precision="fp32")
    config = DistillConfig(train=train, ce_weight=0.0, hidden_weight=1.0, layer_map=((0, 1),))
    plan = resolve_plan(teacher, student, config)
    projections = make_projections(teacher, student.loaded, plan)
    run = Run(teacher, student.loaded, projections, plan, config,
              TrainData(tuple(TEXTS), tuple(LABELS)), ckpt)
    before = _loss(run)
    return run, before, distill_train(run)


def _assert_distilled(name: str, epochs: int, tmp_path) -> None:
    run, before, result = _distill(name, epochs, tmp_path / "ckpt")
    assert depth(run.student) == 1 < depth(run.teacher)
    assert run.plan.hidden_pairs == ((0, 1),)
    assert bool(run.projections) == bool(FAMILIES[name].prunable)  # fresh students are narrower
    assert result["steps_done"] == result["steps"] > 0
    assert _loss(run) < 0.8 * before
    expected = logits(run.student)
    save_model(run.student, tmp_path / "student")
    reloaded = load_model(tmp_path / "student")
    assert reloaded.module.hf.config.model_type == name
    torch.testing.assert_close(logits(reloaded), expected, atol=1e-6, rtol=0)
    if not FAMILIES[name].prunable:
        assert layer_shapes(reloaded) == {"heads": [3], "ffn": [61]}


def test_pruned_bert_student_gets_closer_to_its_teacher_when_distilled_with_hidden_states(
        tmp_path):
    _assert_distilled("bert", 8, tmp_path)


def test_fresh_modernbert_student_distills_through_a_projection_when_layers_cannot_be_cut(
        tmp_path):
    _assert_distilled("modernbert", 8, tmp_path)


def test_hidden_projection_maps_layer_widths_when_the_embedding_is_factorised():
    teacher = _teacher("electra")  # embedding 16 wide, layers 32 wide
    student = build_student("fresh:layers=1,hidden=16,heads=2,ffn=32", teacher)
    plan = resolve_plan(teacher, student, DistillConfig(hidden_weight=1.0))
    projections = make_projections(teacher, student.loaded, plan)
    assert (projections["0"].in_features, projections["0"].out_features) == (16, 32)


def _edgetpu(loaded, out, name: str = "model"):
    from edgecompress.compress.quantize.integer import integer_friendly
    from edgecompress.targets import export, load_profile
    from edgecompress.targets.quantize import QuantOptions

    sample = batch(loaded, 32)
    module = integer_friendly(loaded.module, "tflite", sample)  # as the quantize stage does
    options = QuantOptions(calibration=(sample,), module=module)
    return export(module, sample, load_profile("edgetpu"), out, name=name, quant=options)


def test_edgetpu_preflight_refuses_deberta_in_one_line_naming_the_op_before_converting(tmp_path):
    with pytest.raises(PreflightError) as caught:
        _edgetpu(tiny_family("deberta-v2"), tmp_path)
    message = str(caught.value)
    assert message.startswith("edgetpu preflight: deberta-v2 cannot run integer-only: SELECT_V2")
    assert "DisentangledSelfAttention" in message and "\n" not in message
    assert not list(tmp_path.glob("*.tflite*"))  # nothing was converted


# ---------------------------------------------------------------- slow: the whole matrix


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_distills_into_a_smaller_student_that_reloads_when_trained(name, tmp_path):
    _assert_distilled(name, 8, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_exports_full_integer_for_edgetpu_or_is_refused_by_preflight(name,
                                                                                  tmp_path):
    from edgecompress.targets.preflight import preflight

    loaded = tiny_family(name)
    if name in EDGETPU_REFUSED:
        with pytest.raises(PreflightError, match=f"^edgetpu preflight: {name} .*"
                                                 f"{EDGETPU_REFUSED[name]}"):
            _edgetpu(loaded, tmp_path)
        return
    result = _edgetpu(loaded, tmp_path)
    assert result.agreement >= result.min_agreement and result.rel_error <= result.max_rel_error
    report = preflight(result.path)
    assert report.integer_only, report.float_ops


def _big_csv(path):
    """300 train / 20 dev / 20 test labelled rows: edgetpu calibrates on 256 sentences."""
    import csv

    words = ["wonderful", "dull", "clever", "tedious", "moving", "boring", "sharp", "lifeless"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split"])
        for i in range(340):
            split = "train" if i < 300 else ("dev" if i < 320 else "test")
            word = words[i % len(words)]
            writer.writerow([f"a {word} film number {i}", "pos" if i % 2 == 0 else "neg", split])
    return path


@pytest.mark.slow
def test_a_run_refuses_edgetpu_and_still_exports_the_other_target_when_preflight_blocks(
        tmp_path):
    import json

    from rich.console import Console

    from edgecompress.compress.pipeline.recipe import load_recipe
    from edgecompress.compress.pipeline.runs import run_recipe

    model = save_tiny(tiny_family("deberta-v2"), tmp_path / "deberta")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(f'name = "tiny"\nmodel = "{model}"\n'
                      f'dataset = "{_big_csv(tmp_path / "rows.csv")}"\n'
                      'targets = ["x86-cpu", "edgetpu"]\n\n[quantize]\n'
                      'schemes = { "x86-cpu" = "fp32" }\n\n[bench]\nruns = 3\nwarmup = 1\n')
    run_recipe(load_recipe(recipe), tmp_path / "run", Console(quiet=True))
    refused = json.loads((tmp_path / "run/artifacts/edgetpu/refused.json").read_text())
    assert refused["target"] == "edgetpu" and "SELECT_V2" in refused["reason"]
    assert "\n" not in refused["reason"]
    assert list((tmp_path / "run/artifacts/x86-cpu").glob("*.onnx"))
    assert (tmp_path / "run/artifacts/x86-cpu/bench.json").is_file()


# ---------------------------------------------------------------- slow: the whole chain

CHAIN_TARGETS = ("x86-cpu", "arm64-phone", "android-xnnpack")  # one ONNX, one TFLite, ExecuTorch


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_family_goes_through_prune_distill_quantize_export_passing_parity_on_every_format(
        name, sentiment_csv, tmp_path):
    """A tiny random checkpoint (RoBERTa with its own byte-level BPE tokenizer; a scaled-up
    classifier, as _teacher) pruned (a quarter of heads and FFN neurons), distilled from itself,
    quantized dynamic int8 and exported
    for ONNX, TFLite and ExecuTorch: each artifact passes its int8 gate and is evaluated and
    benchmarked with its runtime."""
    import json

    from rich.console import Console

    from edgecompress.compress.pipeline.recipe import load_recipe
    from edgecompress.compress.pipeline.runs import run_recipe
    from edgecompress.targets.extras import enable_hint

    if enable_hint("pte"):
        pytest.skip(f"ExecuTorch not installed: {enable_hint('pte')}")
    loaded = tiny_family(name, own_tokenizer=name == "roberta")
    with torch.no_grad():  # logits with margins: a random head ties them, and argmax flips
        _head(loaded).weight.mul_(30.0)
    model = save_tiny(loaded, tmp_path / name)
    schemes = ", ".join(f'"{t}" = "dynamic-int8"' for t in CHAIN_TARGETS)
    recipe = tmp_path / "chain.toml"
    recipe.write_text(
        f'name = "chain"\nmodel = "{model}"\ndataset = "{sentiment_csv}"\n'
        f"targets = {json.dumps(list(CHAIN_TARGETS))}\n\n"
        '[prune]\nheads = 0.25\nffn = 0.25\nimportance = "magnitude"\n\n'
        '[distill]\nstudent = "pruned"\n\n[distill.train]\nepochs = 1\nbatch_size = 8\n'
        f"max_length = 32\n\n[quantize]\nschemes = {{ {schemes} }}\n\n"
        "[bench]\nruns = 3\nwarmup = 1\n")
    out = tmp_path / "run"
    run_recipe(load_recipe(recipe), out, Console(quiet=True))
    assert (out / "stages" / "prune" / "stage.json").is_file()
    assert (out / "stages" / "distill" / "stage.json").is_file()
    formats = {}
    for target in CHAIN_TARGETS:
        folder = out / "artifacts" / target
        assert not (folder / "refused.json").exists(), (folder / "refused.json").read_text()
        manifest = json.loads((folder / "manifest.json").read_text())
        parity = manifest["parity"]
        assert manifest["scheme"] == "dynamic-int8" and parity["gated_on"] == "agreement+rel_error"
        assert parity["agreement"] >= parity["min_agreement"]
        assert parity["rel_error"] <= parity["max_rel_error"]
        assert json.loads((folder / "eval.json").read_text())["n"] == 8
        assert json.loads((folder / "bench.json").read_text())["p50_ms"] > 0
        formats[target] = manifest["format"]
    assert formats == {"x86-cpu": "onnx", "arm64-phone": "tflite", "android-xnnpack": "pte"}
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert {row["format"] for row in rows} == {"onnx", "tflite", "pte"}
