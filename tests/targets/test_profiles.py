from __future__ import annotations

import dataclasses

import pytest

from edgecompress.errors import UserError
from edgecompress.targets import Profile, list_profiles, load_profile
from edgecompress.targets.profiles import PROFILE_DIR
from edgecompress.targets.schemes import SCHEMES

SHIPPED = ["android-xnnpack", "arm64-phone", "edgetpu", "npu-a16w8", "npu-int8", "rpi5",
           "x86-cpu", "x86-openvino"]
BASE = (PROFILE_DIR / "x86-cpu.toml").read_text()


@pytest.mark.parametrize("name", SHIPPED)
def test_profile_loads_consistent_when_shipped(name):
    profile = load_profile(name)
    assert profile.name == name
    assert profile.source == PROFILE_DIR / f"{name}.toml"
    assert profile.scheme in SCHEMES[profile.format]
    assert profile.tolerance > 0 and 0 < profile.min_agreement <= 1
    if profile.format == "tflite":  # litert-torch converts static shapes only
        assert profile.runtime == "litert" and profile.fixed_shape == (1, 128)
    elif profile.format == "pte":  # one row of up to 128 tokens, memory planned for 128
        assert profile.runtime == "executorch" and profile.fixed_shape is None
        assert (profile.shape, profile.batch, profile.max_seq_len) == ("dynamic-seq", 1, 128)
    elif profile.format == "openvino":  # an IR keeps dynamic axes; 1 thread, hint recorded
        assert profile.runtime == "openvino" and profile.fixed_shape is None
        assert profile.threads == 1 and profile.inference_precision in ("f32", "bf16")
    else:
        assert profile.runtime == "onnxruntime" and profile.opset >= 17
        # dynamic axes, except int8 NPUs whose compilers plan memory for one shape
        assert profile.fixed_shape == ((1, 128) if profile.integer_only else None)


def test_list_profiles_returns_every_shipped_target_when_called():
    assert [p.name for p in list_profiles()] == SHIPPED


def test_shipped_profiles_match_the_targets_when_read():
    by_name = {p.name: p for p in list_profiles()}
    assert by_name["x86-cpu"].threads == 2 and by_name["x86-cpu"].shape == "dynamic"
    assert by_name["rpi5"].threads == 4 and by_name["arm64-phone"].threads == 4


def test_load_profile_reads_user_file_when_given_a_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(BASE.replace('name = "x86-cpu"', 'name = "mine"').replace("threads = 2",
                                                                               "threads = 1"))
    profile = load_profile(str(path))
    assert (profile.name, profile.threads, profile.source) == ("mine", 1, path)


def test_load_profile_accepts_missing_budgets_when_they_are_optional(tmp_path):
    path = tmp_path / "nobudget.toml"
    path.write_text(BASE[: BASE.index("[budgets]")])
    profile = load_profile(path)
    assert (profile.size_mb, profile.latency_ms, profile.ram_mb) == (None, None, None)


BAD = {  # case -> (edit of the x86-cpu file, key the message must name, words it must contain)
    "unknown_top_key": (lambda t: t + '\nflavour = "spicy"\n', "flavour", "unknown key"),
    "unknown_table_key": (lambda t: t.replace("min_agreement = 1.0",
                                              "min_agreement = 1.0\nrtol = 1"),
                          "parity.rtol", "unknown key"),
    "wrong_type": (lambda t: t.replace("threads = 2", 'threads = "2"'), "threads", "integer"),
    "bool_for_int": (lambda t: t.replace("threads = 2", "threads = true"), "threads", "integer"),
    "missing_field": (lambda t: t.replace("seq_len = 128", ""), "shape.seq_len", "missing"),
    "missing_table": (lambda t: t.replace("[parity]", "[parity_]"), "parity_", "unknown key"),
    "bad_value": (lambda t: t.replace("threads = 2", "threads = 0"), "threads", "positive"),
    "unknown_scheme": (lambda t: t.replace('scheme = "dynamic-int8"', 'scheme = "int3"'),
                       "scheme", "fp32"),
    "old_opset": (lambda t: t.replace("opset = 18", "opset = 11"), "opset", ">= 17"),
    "bad_agreement": (lambda t: t.replace("min_agreement = 1.0", "min_agreement = 1.5"),
                      "parity.min_agreement", "[0, 1]"),
    "tflite_dynamic": (lambda t: t.replace('format = "onnx"', 'format = "tflite"')
                       .replace('runtime = "onnxruntime"', 'runtime = "litert"')
                       .replace("opset = 18", ""), "shape.policy", "fixed"),
    "wrong_runtime": (lambda t: t.replace('runtime = "onnxruntime"', 'runtime = "litert"'),
                      "runtime", "onnxruntime"),
    "table_as_value": (lambda t: t.replace("[budgets]\n", "budgets = 3\n[x]\n"), "budgets",
                       "table"),
    "buckets_on_onnx": (lambda t: t.replace("seq_len = 128", "seq_len = 128\nbuckets = [32, 128]"),
                        "shape.buckets", "tflite profiles only"),
    "buckets_not_ints": (lambda t: t.replace("seq_len = 128", 'seq_len = 128\nbuckets = ["32"]'),
                         "shape.buckets", "list of integers"),
    "onnx_dynamic_seq": (lambda t: t.replace('policy = "dynamic"', 'policy = "dynamic-seq"'),
                         "shape.policy", "for pte profiles only"),
}
PTE = (PROFILE_DIR / "android-xnnpack.toml").read_text()
BAD_PTE = {  # the same, on the android-xnnpack file
    "pte_fixed": (lambda t: t.replace('policy = "dynamic-seq"', 'policy = "fixed"'),
                  "shape.policy", "pte profiles use it"),
    "pte_integer_only": (lambda t: t + "\n", "integer_only", "not pte"),
    "pte_static_scheme": (lambda t: t.replace('scheme = "dynamic-int8"', 'scheme = "static-int8"'),
                          "scheme", "dynamic-int8"),
    "pte_runtime": (lambda t: t.replace('runtime = "executorch"', 'runtime = "litert"'),
                    "runtime", "executorch"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_load_profile_raises_user_error_naming_file_and_key_when_profile_is_bad(case, tmp_path):
    edit, key, words = BAD[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(edit(BASE))
    with pytest.raises(UserError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message and key in message and words in message
    assert "\n" not in message


BAD_BUCKETS = {  # case -> (the rpi5 file's buckets line replaced by, words the message holds)
    "descending": ("buckets = [64, 32, 128]", "ascending order"),
    "not_ending_at_seq_len": ("buckets = [32, 64]", "ending at seq_len 128"),
    "repeated": ("buckets = [32, 32, 128]", "ascending order"),
    "zero": ("buckets = [0, 128]", "positive"),
    "static_scheme": ('buckets = [32, 128]\n[calibration]\nsamples = 8',  # no static in schemes
                      None),
}


@pytest.mark.parametrize("case", sorted(BAD_BUCKETS))
def test_load_profile_checks_buckets_when_profile_has_them(case, tmp_path):
    line, words = BAD_BUCKETS[case]
    text = (PROFILE_DIR / "rpi5.toml").read_text()
    assert "buckets = [32, 64, 128]" in text
    path = tmp_path / f"{case}.toml"
    if words is None:  # a static scheme among the runnable ones: calibration has one signature
        text = text.replace('"weight-only-int8"]', '"weight-only-int8", "static-int8"]')
        words = "static-int8 calibrates one signature"
    path.write_text(text.replace("buckets = [32, 64, 128]", line))
    with pytest.raises(UserError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message and "shape.buckets" in message and words in message
    assert "\n" not in message


@pytest.mark.parametrize("case", sorted(BAD_PTE))
def test_load_profile_raises_user_error_naming_key_when_a_pte_profile_is_bad(case, tmp_path):
    edit, key, words = BAD_PTE[case]
    path = tmp_path / f"{case}.toml"
    text = edit(PTE)
    if case == "pte_integer_only":  # a top-level key: before the first table
        text = text.replace('format = "pte"', 'format = "pte"\ninteger_only = true')
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message and key in message and words in message
    assert "\n" not in message


def test_load_profile_raises_user_error_naming_file_when_toml_is_invalid(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(UserError, match="broken.toml.*not valid TOML"):
        load_profile(path)


def test_load_profile_lists_known_targets_when_name_is_unknown():
    with pytest.raises(UserError) as info:
        load_profile("toaster")
    assert "toaster" in str(info.value)
    assert all(name in str(info.value) for name in SHIPPED)


def test_load_profile_raises_user_error_when_path_is_missing(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_profile(tmp_path / "nope.toml")


def test_profile_raises_value_error_when_built_with_bad_value():
    good = load_profile("rpi5")
    with pytest.raises(ValueError, match="threads"):
        dataclasses.replace(good, threads=-1)
    with pytest.raises(ValueError, match="opset"):
        dataclasses.replace(good, opset=18)  # tflite has no opset


def test_profile_is_frozen_when_loaded():
    profile: Profile = load_profile("rpi5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.threads = 8  # type: ignore[misc]


@pytest.mark.parametrize("name", ["../../victim", "..", ".", "a/b", "Rpi5", ".hidden", ""])
def test_load_profile_raises_user_error_naming_file_and_name_when_name_is_not_a_safe_path(
        name, tmp_path):
    path = tmp_path / "evil.toml"
    path.write_text(BASE.replace('name = "x86-cpu"', f'name = "{name}"'))
    with pytest.raises(UserError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}: name: expected") and repr(name) in message
    assert "\n" not in message


def test_profile_raises_value_error_when_built_with_a_path_like_name():
    with pytest.raises(ValueError, match="name"):
        dataclasses.replace(load_profile("rpi5"), name="../../victim")
