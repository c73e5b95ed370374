"""The transfer set: augmented copies of the training sentences, taught by soft targets only."""

import json

import pytest
import torch
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.data.audit import normalize
from edgecompress.compress.distill import (
    DistillConfig,
    Run,
    TrainData,
    build_student,
    distill_train,
    resolve_plan,
)
from edgecompress.compress.distill.config import TransferConfig
from edgecompress.compress.distill.losses import SOFT_ONLY, label_ce
from edgecompress.compress.distill.transfer import (
    build_transfer_set,
    nearest_words,
    vocabulary_words,
    words,
)
from edgecompress.compress.pipeline.recipe import stage_config
from edgecompress.compress.training.train import FinetuneConfig
from edgecompress.errors import UserError
from tests.compress.distill.conftest import TEXTS
from tests.models import tiny_bert

runner = CliRunner()
TRAIN = ["a wonderful film with a sharp script", "a dull mess of a movie",
         "brilliant and funny from start to finish", "boring , far too long"]


def _build(config: TransferConfig, seed: int = 0, heldout=()):
    teacher = tiny_bert()
    return build_transfer_set(TRAIN, list(heldout), teacher.tokenizer.get_vocab(),
                              teacher.module.hf.get_input_embeddings().weight, config, seed)


def test_transfer_set_is_the_same_when_built_twice_with_one_seed():
    config = TransferConfig(augment=3, replace_rate=0.5, mix_rate=0.5)
    first, again, other = _build(config, 0), _build(config, 0), _build(config, 1)
    assert first.texts == again.texts and len(first.texts) == 3 * len(TRAIN)
    assert first.texts != other.texts  # the seed decides the copies
    assert first.texts != tuple(" ".join(words(t)) for t in TRAIN * 3)  # something changed


def test_transfer_rows_use_only_training_words_when_replacing_and_mixing():
    config = TransferConfig(augment=4, replace_rate=1.0, delete_rate=0.0, mix_rate=1.0)
    vocabulary = {w for text in TRAIN for w in words(text)}
    for row in _build(config).texts:
        assert set(row.split()) <= vocabulary


def test_transfer_set_drops_a_copy_when_it_equals_a_heldout_row():
    config = TransferConfig(augment=2, replace_rate=0.0, delete_rate=0.0, mix_rate=0.0)
    test_row = "A DULL   mess of a movie"  # the same text as a training row once normalized
    found = _build(config, heldout=[test_row])
    assert found.info["dropped_heldout"] == 2 and len(found.texts) == 2 * (len(TRAIN) - 1)
    assert normalize(test_row) not in {normalize(t) for t in found.texts}


def test_nearest_words_never_name_the_word_itself_when_ranked_by_embedding():
    found = {"good": 0, "bad": 1, "fine": 2}
    embedding = torch.tensor([[1.0, 0.0], [-1.0, 0.1], [0.9, 0.1]])
    near = nearest_words(found, embedding, k=1)
    assert near == {"good": ("fine",), "bad": ("fine",), "fine": ("good",)}
    assert vocabulary_words(["Good , bad 42"], {"good": 5, "bad": 6, "42": 7}) == {"bad": 6,
                                                                                  "good": 5}


def test_label_ce_ignores_transfer_rows_when_a_batch_mixes_them():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-3.0, 4.0]])
    labelled = label_ce(logits[:1], torch.tensor([1]))
    mixed = label_ce(logits, torch.tensor([1, SOFT_ONLY, SOFT_ONLY]))
    assert torch.isclose(mixed, labelled / 3)  # a labelled row weighs what it weighs alone
    assert label_ce(logits, torch.full((3,), SOFT_ONLY)).item() == 0.0


def test_transfer_rows_get_no_ce_when_the_loop_trains_on_them(teacher, tmp_path):
    config = DistillConfig(train=FinetuneConfig(epochs=1, batch_size=8, learning_rate=1e-3),
                           ce_weight=1.0)
    student = build_student("layers:0", teacher)
    plan = resolve_plan(teacher, student, config)
    data = TrainData(tuple(TEXTS[:8]), (SOFT_ONLY,) * 8)
    run = Run(teacher, student.loaded, torch.nn.ModuleDict(), plan, config, data,
              tmp_path / ".ckpt")
    seen = []
    distill_train(run, lambda step, total, loss, parts: seen.append(parts))
    assert seen and all(parts["ce"] == 0.0 and parts["kd"] > 0 for parts in seen)


@pytest.mark.parametrize("values, message", [
    ({"augment": -1}, "augment: must be between 0 and 64"),
    ({"replace_rate": 1.5}, "replace_rate: must be between 0 and 1"),
    ({"delete_rate": 1.0}, "delete_rate: must be below 1"),
    ({"neighbours": 0}, "neighbours: must be >= 1"),
])
def test_transfer_config_raises_naming_the_field_when_a_value_is_out_of_range(values, message):
    with pytest.raises(ValueError, match=message):
        TransferConfig(**values)


def test_distill_exits_2_with_one_line_when_augment_is_negative(tmp_path):
    result = runner.invoke(app, ["distill", "--teacher", "t", "--student", "layers:0",
                                 "--dataset", "d", "--out", str(tmp_path / "s"),
                                 "--augment", "-2"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--augment" in lines[0] and "between 0 and 64" in lines[0]
    assert not (tmp_path / "s").exists()


def test_recipe_transfer_table_sets_the_transfer_config_when_given():
    config = stage_config("r.toml", "distill", {"transfer": {"augment": 2, "mix_rate": 0.0}})
    assert config.distill.transfer == TransferConfig(augment=2, mix_rate=0.0)
    with pytest.raises(UserError, match=r"r.toml: key 'distill.transfer.neighbours': must be"):
        stage_config("r.toml", "distill", {"transfer": {"neighbours": 0}})


def test_distill_identity_changes_when_a_transfer_setting_changes(tmp_path):
    from edgecompress.compress.data.dataref import DataRef
    from edgecompress.compress.distill.stage import DistillRequest

    def identity(transfer: TransferConfig) -> str:
        return DistillRequest("t", "layers:0", DataRef("rt-polarity"), tmp_path / "o",
                              DistillConfig(transfer=transfer)).identity()

    plain = identity(TransferConfig())
    assert "transfer" not in DistillConfig().to_json()  # unused: earlier identities hold
    assert len({plain, identity(TransferConfig(augment=1)), identity(TransferConfig(augment=2)),
                identity(TransferConfig(augment=2, replace_rate=0.5))}) == 4


def test_distill_trains_on_the_transfer_set_when_augment_is_given(tiny_bert_dir, sentiment_csv,
                                                                 tmp_path):
    args = ["distill", "--teacher", str(tiny_bert_dir), "--student", "layers:1", "--dataset",
            str(sentiment_csv), "--out", str(tmp_path / "s"), "--batch-size", "8",
            "--max-steps", "2", "--augment", "2", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["n_train"] == 3 * 24 and manifest["transfer"]["rows"] == 2 * 24
    assert manifest["config"]["transfer"]["augment"] == 2


def test_transfer_seeds_pairs_each_seed_with_its_reference_when_both_arms_ran():
    import numpy as np

    from benchmarks.transfer_seeds import pair

    truth = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    base = {"seed": 0, "_truth": truth, "_pred": np.array([0, 1, 0, 1, 1, 0, 1, 0])}  # 4 right
    aug = {"seed": 0, "_pred": np.array([0, 1, 0, 1, 0, 1, 1, 0])}  # 6 right, 2 more
    paired = pair({"base": [base], "aug": [aug]}, "base")["aug"]
    assert paired["per_seed"][0]["delta"] == 25.0 and paired["mean_delta"] == 25.0
    assert paired["per_seed"][0]["model_only"] == 2 and paired["pays"]
    with pytest.raises(SystemExit, match="aug seed 1 has no base run"):
        pair({"base": [base], "aug": [{**aug, "seed": 1}]}, "base")


def test_transfer_seeds_carries_an_arms_stored_seeds_and_leaves_the_other_arms(tmp_path):
    from benchmarks.transfer_seeds import _carry_stored

    class Split:
        labels = [0, 1, 1]

    class Data:
        def split(self, name):
            return Split()

    stored = {"seed": 0, "dataset": "d", "accuracy": 2 / 3, "predictions": "011"}
    previous = tmp_path / "earlier.json"
    previous.write_text(json.dumps({"runs": {"base": [stored, {**stored, "seed": 1}],
                                             "aug": [stored]}}))
    runs = {"base": [{"seed": 1, "_pred": None}]}  # seed 1 given on the command line
    _carry_stored(previous, runs, {"d": Data()}, ["base"])
    assert sorted(r["seed"] for r in runs["base"]) == [0, 1] and "aug" not in runs
    carried = next(r for r in runs["base"] if r["seed"] == 0)
    assert carried["_pred"].tolist() == [0, 1, 1] and "predictions" not in carried


def test_transfer_seeds_counts_the_earlier_rounds_of_a_runs_distill_step(tmp_path):
    from benchmarks.transfer_seeds import read_run

    def record(steps, seconds):
        return {"config": {"train": {"seed": 1}}, "teacher": "/t/teacher", "dataset": "d",
                "n_train": 10, "steps": steps, "seconds": seconds, "wall_seconds": seconds + 6,
                "test": {"student": {"accuracy": 0.8}, "teacher": {"accuracy": 0.9}}}

    for step, steps in (("distill-round1", 305), ("distill", 610)):
        folder = tmp_path / "run" / "stages" / step / "checkpoint"
        folder.mkdir(parents=True)
        (folder / "distill.json").write_text(json.dumps(record(steps, steps * 0.6)))
    run = read_run(tmp_path / "run" / "stages" / "distill" / "checkpoint")
    assert run["run"] == "run/stages/distill/checkpoint" and run["rounds"] == [305, 610]
    assert run["steps"] == 915 and run["train_minutes"] == round(915 * 0.6 / 60, 1)
    assert run["wall_minutes"] == round((915 * 0.6 + 12) / 60, 1)
