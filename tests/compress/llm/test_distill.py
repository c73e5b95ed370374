"""Distillation of a pruned decoder (compress/llm/distill.py, `edgecompress llm distill`) on tiny
random Llama models built in process: the KL to the teacher drops, a killed run resumes to the
same weights, bad input is refused in one line before training."""

from __future__ import annotations

import copy
import csv
import json

import pytest
import torch
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.config import FieldError
from edgecompress.compress.llm.config import EvalConfig, LMDistillConfig
from edgecompress.compress.llm.distill import (
    LMDistillRun,
    check_disjoint,
    distill_lm,
    hidden_pairs,
    training_sequences,
)
from edgecompress.compress.llm.load import LoadedLM, load_lm, save_lm
from edgecompress.compress.llm.metrics import score_windows, token_windows
from edgecompress.compress.llm.surgery import drop_layers
from edgecompress.errors import UserError
from tests.compress.llm.tiny import TEXTS, tiny_lm

runner = CliRunner()
TRAIN = [f"{text} ({i})" for i, text in enumerate(TEXTS) if i % 2]
HELD_OUT = [f"{text} ({i})" for i, text in enumerate(TEXTS) if not i % 2]
FAST = dict(steps=12, batch_size=4, context=16, learning_rate=3e-3, warmup_ratio=0.0,
            freeze_embeddings=False, checkpoint_every=4)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: tiny models train in a second, not a minute, on a shared host."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pair(layers: int = 4, keep=(0, 2, 3)):
    """(teacher, student): a random Llama (GQA 4 query / 2 KV heads) with sharpened output
    distributions (a random one is near uniform: little to learn) and its copy without the layers
    not in `keep`."""
    teacher = tiny_lm("llama", layers=layers)
    with torch.no_grad():
        teacher.model.model.norm.weight.mul_(8.0)
    student = copy.deepcopy(teacher.model)
    drop_layers(student, list(keep))
    return teacher, student


def _kl(student, teacher, tokenizer) -> float:
    windows = token_windows(tokenizer, HELD_OUT, EvalConfig(context=16, stride=8, windows=6))
    scores = score_windows(student, windows, teacher)
    return float(scores.kl.sum() / scores.tokens.sum())


def _run(student, teacher, tokenizer, tmp_path, **changes) -> LMDistillRun:
    config = LMDistillConfig(**{**FAST, **changes})
    return LMDistillRun(student, teacher.model, training_sequences(tokenizer, TRAIN, config),
                        config, tmp_path / "ckpt", "tiny")


def test_distill_lowers_loss_and_heldout_kl_when_trained_a_few_steps(tmp_path):
    teacher, student = _pair()
    before = _kl(student, teacher.model, teacher.tokenizer)
    result = distill_lm(_run(student, teacher, teacher.tokenizer, tmp_path, steps=30))
    after = _kl(student, teacher.model, teacher.tokenizer)
    losses = [row["kd"] for row in result["history"]]
    assert result["steps_done"] == 30 and result["tokens_seen"] == 30 * 4 * 16
    assert sum(losses[-5:]) < 0.6 * sum(losses[:5]) and after < 0.7 * before, (before, after)


def test_distill_resumes_to_identical_weights_when_killed_after_a_checkpoint(tmp_path):
    teacher, student = _pair()
    whole = copy.deepcopy(student)
    distill_lm(_run(whole, teacher, teacher.tokenizer, tmp_path / "a"))

    def kill(step, steps, row):
        if step == 6:  # checkpoint at 4; steps 5-6 are lost, as after kill -9
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill_lm(_run(student, teacher, teacher.tokenizer, tmp_path / "b"), kill)
    # the rerun starts from other weights: the checkpoint must restore every one of them
    fresh = tiny_lm("llama", seed=5, layers=3).model
    resumed = distill_lm(_run(fresh, teacher, teacher.tokenizer, tmp_path / "b"))
    assert resumed["resumed_from"] == 4 and [r["step"] for r in resumed["history"]] == list(
        range(1, 13))
    expected = whole.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in fresh.state_dict().items())


def test_distill_continues_from_its_checkpoint_when_a_time_budget_stopped_it(tmp_path):
    teacher, student = _pair()
    stopped = distill_lm(_run(student, teacher, teacher.tokenizer, tmp_path, max_minutes=1e-9))
    assert (stopped["stopped"], stopped["steps_done"]) == ("max-minutes", 1)
    rerun = distill_lm(_run(student, teacher, teacher.tokenizer, tmp_path))  # no budget now
    assert (rerun["resumed_from"], rerun["steps_done"], rerun["stopped"]) == (1, 12, None)
    # the total adds the stopped run's time (each figure is rounded to 0.1 s)
    assert rerun["seconds"] == pytest.approx(stopped["seconds"] + rerun["seconds_this_run"],
                                             abs=0.15)


def test_distill_hidden_loss_decreases_when_layers_map_by_prune_record(tmp_path):
    teacher, student = _pair()
    run = LMDistillRun(student, teacher.model,
                       training_sequences(teacher.tokenizer, TRAIN, LMDistillConfig(**FAST)),
                       LMDistillConfig(**{**FAST, "kd_weight": 0.0, "hidden_weight": 1.0,
                                          "steps": 20}),
                       tmp_path / "ckpt", pairs=hidden_pairs(3, 4, [0, 2, 3]))
    hidden = [row["hidden"] for row in distill_lm(run)["history"]]
    assert sum(hidden[-5:]) < 0.7 * sum(hidden[:5]), hidden


def test_hidden_pairs_map_student_layers_to_kept_teacher_layers_when_pruned():
    assert hidden_pairs(3, 4, [0, 2, 3]) == ((1, 1), (2, 3))
    assert hidden_pairs(2, 2, None) == ((1, 1),)
    with pytest.raises(UserError, match="no prune_report.json"):
        hidden_pairs(3, 4, None)
    with pytest.raises(UserError, match="does not fit"):
        hidden_pairs(3, 4, [0, 1, 4])


def test_training_sequences_cut_whole_sequences_when_tokens_are_capped():
    tokenizer = tiny_lm("llama").tokenizer
    config = LMDistillConfig(context=16, batch_size=2, max_train_tokens=64)
    rows = training_sequences(tokenizer, TRAIN, config)
    assert tuple(rows.shape) == (4, 16)
    with pytest.raises(UserError, match="fewer than one batch"):
        training_sequences(tokenizer, TRAIN[:1], LMDistillConfig(context=64, batch_size=8))


def test_check_disjoint_refuses_when_a_training_text_is_held_out():
    check_disjoint(TRAIN, HELD_OUT, ("train", "test"))
    with pytest.raises(UserError, match="1 texts of train are also in test"):
        check_disjoint(TRAIN, [TRAIN[3]], ("train", "test"))


def test_distill_config_refuses_when_every_loss_weight_is_zero():
    with pytest.raises(FieldError, match="nothing to train on"):
        LMDistillConfig(kd_weight=0.0)
    with pytest.raises(FieldError, match="max_train_tokens"):
        LMDistillConfig(context=64, max_train_tokens=32)


# --- the command --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Teacher dir, pruned student dir (with prune_report.json) and a CSV train / test."""
    root = tmp_path_factory.mktemp("distill")
    teacher, student = _pair()
    save_lm(teacher, root / "teacher")
    save_lm(LoadedLM(student, teacher.tokenizer, root, "s"), root / "student")
    (root / "student" / "prune_report.json").write_text(json.dumps({"layers_kept": [0, 2, 3]}))
    with (root / "text.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "split"])
        writer.writerows([(t, "train") for t in TRAIN] + [(t, "test") for t in HELD_OUT])
    return root


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def _distill(models, out, *extra):
    return runner.invoke(app, ["llm", "distill", str(models / "student"), "--out", str(out),
                               "--teacher", str(models / "teacher"), "--dataset",
                               str(models / "text.csv"), "--steps", "4", "--batch-size", "2",
                               "--context", "16", "--lr", "1e-3", *extra])


def test_llm_distill_writes_a_reloadable_checkpoint_and_record_when_given_a_teacher(models,
                                                                                   tmp_path):
    out = tmp_path / "out"
    result = _distill(models, out, "--hidden-weight", "0.5", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "distill_report.json").read_text())
    assert report["steps_done"] == 4 and report["hidden_pairs"] == [[1, 1], [2, 3]]
    assert report["held_out_splits"] == ["test"] and report["identity"]
    assert json.loads((out / "prune_report.json").read_text())["layers_kept"] == [0, 2, 3]
    loaded = load_lm(out)
    assert loaded.shape.layers == 3 and not (tmp_path / ".out.ckpt").exists()
    saved = load_lm(models / "student").model.state_dict()
    changed = [k for k, v in loaded.model.state_dict().items() if not torch.equal(v, saved[k])]
    assert changed


def test_llm_distill_rerun_continues_when_a_time_budget_stopped_it(models, tmp_path):
    out = tmp_path / "out"
    first = _distill(models, out, "--max-minutes", "1e-9", "--checkpoint-every", "2")
    assert first.exit_code == 0, first.output
    assert "stopped (max-minutes: rerun to continue)" in first.output
    second = _distill(models, out, "--checkpoint-every", "2", "--json")
    assert second.exit_code == 0, second.output
    report = json.loads((out / "distill_report.json").read_text())
    assert (report["resumed_from"], report["steps_done"], report["stopped"]) == (1, 4, None)
    other = _distill(models, tmp_path / "out", "--seed", "3")
    assert "already holds something else" in _one_line_error(other)


def test_llm_distill_refuses_a_teacher_with_another_tokenizer_before_training(models, tmp_path):
    other = tmp_path / "other"
    teacher = load_lm(models / "teacher")
    teacher.tokenizer.add_tokens(["<extra-token>"])
    save_lm(teacher, other)
    result = runner.invoke(app, ["llm", "distill", str(models / "student"), "--out",
                                 str(tmp_path / "out"), "--teacher", str(other), "--dataset",
                                 str(models / "text.csv")])
    assert "tokenizer" in _one_line_error(result) and not (tmp_path / "out").exists()


def test_llm_distill_refuses_without_teacher_when_student_has_no_registry_source(models,
                                                                                 tmp_path):
    result = runner.invoke(app, ["llm", "distill", str(models / "student"), "--out",
                                 str(tmp_path / "out"), "--dataset", str(models / "text.csv")])
    assert "--teacher is needed" in _one_line_error(result)


def test_llm_distill_refuses_when_train_text_is_also_held_out(models, tmp_path):
    leaky = tmp_path / "leaky.csv"
    with leaky.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "split"), *((t, "train") for t in TRAIN),
                                      (TRAIN[0], "test")])
    result = runner.invoke(app, ["llm", "distill", str(models / "student"), "--out",
                                 str(tmp_path / "out"), "--teacher", str(models / "teacher"),
                                 "--dataset", str(leaky)])
    assert "also in" in _one_line_error(result) and not (tmp_path / "out").exists()


def test_llm_distill_names_the_flag_when_a_value_is_bad(models, tmp_path):
    result = _distill(models, tmp_path / "out", "--kd-weight", "0")
    assert "--kd-weight" in _one_line_error(result)
    result = _distill(models, tmp_path / "out", "--context", "4096")
    assert "context" in _one_line_error(result)
