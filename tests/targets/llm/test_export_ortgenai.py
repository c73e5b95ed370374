"""The model builder's glue: what it refuses before starting, the options each scheme passes."""

from __future__ import annotations

import json

import pytest

from edgecompress.errors import UserError
from edgecompress.targets.llm.export_ortgenai import (
    BUILDER_SCHEMES,
    build_ortgenai,
    builder_options,
    check_builder_input,
)


def test_builder_input_is_refused_naming_the_target_when_the_architecture_is_gpt2(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"],
                                                      "model_type": "gpt2"}))
    with pytest.raises(UserError, match="target x86-cpu-llm cannot take GPT2LMHeadModel"):
        check_builder_input(tmp_path, "x86-cpu-llm")
    with pytest.raises(UserError, match="cannot take"):
        build_ortgenai(tmp_path, tmp_path / "out", scheme="int4-rtn")
    assert not (tmp_path / "out").exists()


def test_builder_input_is_refused_when_config_json_is_missing(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        check_builder_input(tmp_path, "x86-cpu-llm")


def test_quantized_schemes_pass_block_size_and_accuracy_level_when_built():
    precision, options = builder_options("int4-rtn", block_size=64, accuracy_level=1)
    assert precision == "int4"
    assert options == {"algo_config": "rtn", "block_size": "64", "accuracy_level": "1"}
    assert builder_options("fp32", block_size=64, accuracy_level=1) == ("fp32", {})
    assert BUILDER_SCHEMES["int4-k-quant"][1]["algo_config"] == "k_quant"
    # the builder's own default: nothing but the profile's block size and accuracy level (the
    # builder's CPU defaults are 32 and 4)
    assert builder_options("int4-default", block_size=32, accuracy_level=4) == \
        ("int4", {"block_size": "32", "accuracy_level": "4"})


def test_unknown_scheme_is_refused_listing_the_known_when_built(tmp_path):
    with pytest.raises(UserError, match="known: int4-rtn"):
        build_ortgenai(tmp_path, tmp_path / "out", scheme="int3")
