"""Each option is defined once: the stage commands' (and `llm prune` / `llm eval`'s) flags are
their configs' fields."""

import dataclasses
import json
import typing
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.cli.options import flag
from edgecompress.compress.distill.config import DistillConfig, TransferConfig
from edgecompress.compress.llm.config import EvalConfig, LMPruneConfig
from edgecompress.compress.prune.config import PruneConfig
from edgecompress.compress.quantize.config import QuantizeConfig
from edgecompress.compress.training.config import FinetuneConfig

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]

# The options that are not config fields: what to read, where to write, how to print. Declared
# once in cli/options.py (and common.py for the columns) and listed here, per command.
COLUMNS = {"--text-col", "--label-col", "--split-col"}
REQUEST_FLAGS = {
    "finetune": {"--dataset", "--out", "--force", "--json", "--config", *COLUMNS},
    "prune": {"--dataset", "--out", "--force", "--json", "--config", "--label-map", "--eval",
              "--gate", "--gate-runs", *COLUMNS},
    "distill": {"--teacher", "--student", "--dataset", "--out", "--force", "--json", "--config",
                "--label-map", "--train-size", "--unlabeled", "--qat-target", "--qat-scheme",
                "--dev-similarity", *COLUMNS},
    "quantize": {"--dataset", "--out", "--force", "--json", "--label-map", *COLUMNS},
    "export": {"--dataset", "--out", "--force", "--json", *COLUMNS},
    "llm prune": {"--out", "--dataset", "--split", "--force", "--json"},
    "llm eval": {"--reference", "--dataset", "--split", "--prompt", "--json"},
}
# command -> [(config class, field path prefix, the instance whose values are the defaults)]
CONFIGS = {
    "finetune": [(FinetuneConfig, "", FinetuneConfig())],
    "prune": [(PruneConfig, "", PruneConfig())],
    "distill": [(DistillConfig, "", DistillConfig()),
                (FinetuneConfig, "train.", DistillConfig().train),
                (TransferConfig, "transfer.", DistillConfig().transfer)],
    "quantize": [(QuantizeConfig, "", None)],
    "export": [(QuantizeConfig, "", None)],
    "llm prune": [(LMPruneConfig, "", LMPruneConfig())],
    "llm eval": [(EvalConfig, "", EvalConfig())],
}
EXPORT_FIELDS = {"target", "scheme"}  # export: the target and its scheme, nothing to tune


def _options(command: str) -> dict:
    """{primary flag: click option} of a command ("llm prune": a group's), as `--help` shows
    them."""
    click_command = typer.main.get_command(app)
    for name in command.split():
        click_command = click_command.commands[name]
    return {p.opts[0]: p for p in click_command.params if p.param_type_name == "option"}


def _fields(command: str):
    """(flag, field, default) of every config field the command must offer."""
    for cls, prefix, instance in CONFIGS[command]:
        for field in dataclasses.fields(cls):
            hint = typing.get_type_hints(cls)[field.name]
            if dataclasses.is_dataclass(hint) or not field.metadata.get("cli", True):
                continue  # a nested config's fields come with its own row; relative: --max-drop
            if command == "export" and field.name not in EXPORT_FIELDS:
                continue
            default = (getattr(instance, field.name) if instance is not None
                       else field.default)
            yield flag(field.name), prefix + field.name, field, default


def _flag_default(option):
    return option.default


@pytest.mark.parametrize("command", sorted(CONFIGS))
def test_every_field_has_a_flag_with_its_default_when_the_command_is_built(command):
    options = _options(command)
    for name, path, field, default in _fields(command):
        assert name in options, f"{command}: field {path} has no flag {name}"
        got = _flag_default(options[name])
        if field.metadata.get("parse") is not None:  # typed as a string: empty is None
            assert got is None and default in (None, ()), f"{command} {name}: {got!r}"
        elif default is dataclasses.MISSING:
            assert options[name].required, f"{command} {name} should be required"
        else:
            assert got == default, f"{command} {name}: flag {got!r}, field {default!r}"


@pytest.mark.parametrize("command", sorted(CONFIGS))
def test_every_flag_is_a_field_or_a_listed_request_option_when_the_command_is_built(command):
    fields = {name for name, *_ in _fields(command)}
    extra = set(_options(command)) - fields - REQUEST_FLAGS[command] - {"--help"}
    assert not extra, f"{command}: flags without a field: {sorted(extra)}"
    missing = REQUEST_FLAGS[command] - set(_options(command))
    assert not missing, f"{command}: listed request options it lacks: {sorted(missing)}"


def test_choices_come_from_the_enum_when_a_field_has_choices(tmp_path):
    assert _options("prune")["--scope"].metavar == "[global|layer]"
    result = runner.invoke(app, ["prune", "m", "--out", str(tmp_path / "o"), "--scope",
                                 "everywhere"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: --scope: must be one of global, layer, got 'everywhere'"]


def test_llm_prune_counts_are_named_drop_when_prune_uses_the_same_words_for_fractions():
    llm = _options("llm prune")
    assert not {"--layers", "--heads", "--ffn", "--kv-heads", "--query-heads"} & set(llm)
    for name in ("--drop-layers", "--drop-kv-heads", "--drop-query-heads", "--drop-ffn"):
        assert "count" in llm[name].help.lower(), name
        assert typing.get_type_hints(LMPruneConfig)[name[2:].replace("-", "_")] is int
    for name in ("--layers", "--heads", "--ffn"):
        assert "fraction" in _options("prune")[name].help.lower(), name
    assert llm["--layer-method"].metavar == "[each|block]"


def test_llm_prune_refuses_a_layer_method_in_one_line_when_not_a_choice(tmp_path):
    result = runner.invoke(app, ["llm", "prune", "m", "--out", str(tmp_path / "o"),
                                 "--layer-method", "random"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: --layer-method: must be one of each, block, got 'random'"]
    assert not (tmp_path / "o").exists()


def test_fields_without_a_flag_before_now_have_one_when_finetune_is_built():
    options = _options("finetune")
    for name in ("--warmup-ratio", "--weight-decay", "--checkpoint-every", "--precision",
                 "--length-buckets", "--freeze-embeddings"):
        assert name in options


def test_existing_flag_names_keep_working_when_fields_are_named_otherwise():
    assert {"--lr", "--learning-rate"} <= set(_options("finetune")["--lr"].opts)
    quantize = _options("quantize")
    assert "--calib-samples" in quantize and "--calib-method" in quantize
    assert _options("prune")["--eval"].secondary_opts == ["--no-eval"]


def test_learning_rate_default_depends_on_the_model_kind_when_none_is_given():
    config = FinetuneConfig()
    assert config.learning_rate is None
    assert config.for_model("plain").learning_rate == 5e-4
    assert config.for_model("hf").learning_rate == 5e-5
    assert FinetuneConfig(learning_rate=1e-3).for_model("plain").learning_rate == 1e-3


def test_distill_training_defaults_to_three_epochs_at_5e_5_when_not_given():
    train = DistillConfig().train
    assert (train.epochs, train.learning_rate) == (3, 5e-5)
    assert DistillConfig(train=FinetuneConfig(epochs=2)).train.learning_rate == 5e-5


def test_demo_recipe_resolves_to_the_same_configs_when_options_are_generated():
    from edgecompress.compress.pipeline.plan import plan_steps
    from edgecompress.compress.pipeline.recipe import load_recipe

    recipe = load_recipe(REPO / "recipes" / "demo.toml")
    steps = plan_steps(recipe, Path("/tmp/unused-run"))
    got = {s.id: json.loads(json.dumps(dataclasses.asdict(s.config), default=str))
           for s in steps if dataclasses.is_dataclass(s.config)}

    def short(value):  # a path (a user profile, the dataset): by file name, not by checkout
        if isinstance(value, dict):
            return {k: short(v) for k, v in value.items()}
        if isinstance(value, list):
            return [short(v) for v in value]
        return Path(value).name if isinstance(value, str) and value.startswith("/") else value

    before = json.loads((Path(__file__).parent / "demo_plan_configs.json").read_text())
    assert short(got) == before
