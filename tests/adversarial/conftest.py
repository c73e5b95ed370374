"""The adversarial suite's world and its one check.

`world` (built once per session) holds every bad input the cases point at: broken checkpoints,
broken data files, broken recipes and profiles, a file where a directory is expected, a folder
that is not edgecompress's. `expect_refusal` runs one command and asserts the contract of a
refusal: the exit code (2 unless told), exactly one non-empty line of output naming the problem,
no traceback, no new file anywhere under the world or the test's own tmp dir (which also holds
$EDGECOMPRESS_CACHE), and every file that was there byte-identical (sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.fsutil import CACHE_ENV

WEIGHTS = "model.safetensors"
_digests: dict[tuple, str] = {}


def _sha256(path: Path) -> str:
    stat = path.stat()  # memoised on (inode, size, mtime): the world is hashed before every case
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _digests[key]


def snapshot(*roots: Path) -> dict[str, str]:
    """{path: sha256} of every file (hidden ones too) under `roots`; directories as "dir"."""
    found = {}
    for root in roots:
        for here, dirs, files in os.walk(root):
            for name in dirs:
                found[os.path.join(here, name)] = "dir"
            for name in files:
                path = Path(here, name)
                found[str(path)] = _sha256(path) if path.is_file() else "special"
    return found


@dataclass
class World:
    root: Path
    models: dict[str, str] = field(default_factory=dict)  # name -> checkpoint dir
    data: dict[str, str] = field(default_factory=dict)  # name -> data file
    recipes: dict[str, str] = field(default_factory=dict)  # name -> recipe file
    files: dict[str, str] = field(default_factory=dict)  # anything else

    def __getattr__(self, name):  # w.bert, w.csv, ... look in every table
        for table in ("models", "data", "recipes", "files"):
            value = self.__dict__.get(table, {}).get(name)
            if value is not None:
                return value
        raise AttributeError(name)


def _variant(base: Path, out: Path, *, drop: tuple[str, ...] = (),
             replace: dict[str, bytes] | None = None) -> str:
    """A copy of checkpoint `base` (weights hard-linked, never written) minus `drop`, with
    `replace` files written fresh (unlinked first, so no shared inode is ever changed)."""
    out.mkdir(parents=True)
    for item in base.iterdir():
        if item.name in drop or not item.is_file():
            continue
        if item.name == WEIGHTS:
            os.link(item, out / item.name)
        else:
            shutil.copy2(item, out / item.name)
    for name, content in (replace or {}).items():
        (out / name).unlink(missing_ok=True)
        (out / name).write_bytes(content)
    return str(out)


def _models(root: Path, bert: Path, plain: Path) -> dict[str, str]:
    config = json.loads((bert / "config.json").read_text())
    named = {**config, "id2label": {"0": "negative", "1": "positive"},
             "label2id": {"negative": 0, "positive": 1}}
    weights = (bert / WEIGHTS).read_bytes()
    m = root / "models"
    v = {
        "bert": _variant(bert, m / "bert"),
        "plain": _variant(plain, m / "plain"),
        "named": _variant(bert, m / "named", replace={"config.json": json.dumps(named).encode()}),
        "no_tokenizer": _variant(bert, m / "no-tokenizer",
                                 drop=("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                                       "special_tokens_map.json")),
        "config_list": _variant(bert, m / "config-list", replace={"config.json": b"[]"}),
        "config_latin1": _variant(bert, m / "config-latin1",
                                  replace={"config.json": b'{"model_type": "b\xe9rt"}'}),
        "config_badjson": _variant(bert, m / "config-badjson", replace={"config.json": b"{"}),
        "config_t5": _variant(bert, m / "config-t5", replace={
            "config.json": json.dumps({**config, "model_type": "t5"}).encode()}),
        "config_untyped": _variant(bert, m / "config-untyped", replace={"config.json": b"{}"}),
        "truncated": _variant(bert, m / "truncated", drop=(WEIGHTS,),
                              replace={WEIGHTS: weights[: len(weights) // 2]}),
        "garbage_weights": _variant(bert, m / "garbage-weights", drop=(WEIGHTS,),
                                    replace={WEIGHTS: b"\x00" * 64}),
        "pickled": _variant(bert, m / "pickled", drop=(WEIGHTS,),
                            replace={"pytorch_model.bin": b"pickle"}),
        "plain_config_list": _variant(plain, m / "plain-config-list",
                                      replace={"encoder_config.json": b"[]"}),
        "plain_config_bad": _variant(plain, m / "plain-config-bad",
                                     replace={"encoder_config.json": b'{"vocab_size": "x"}'}),
    }
    (m / "empty").mkdir()
    v["empty_dir"] = str(m / "empty")
    return v


def _csv(path: Path, *lines: str | bytes) -> str:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return str(path)


def _data(root: Path, sentiment: Path) -> dict[str, str]:
    d = root / "data"
    d.mkdir()
    rows = [f"sentence number {i},{'pos' if i % 2 else 'neg'}" for i in range(20)]
    split_rows = [f"sentence {i},{'pos' if i % 2 else 'neg'},train" for i in range(20)]
    return {
        "csv": str(shutil.copy2(sentiment, d / "sentiment.csv")),
        "nosplit": _csv(d / "nosplit.csv", "text,label", *rows),
        "three": _csv(d / "three.csv", "text,label", *(f"s {i},{'abc'[i % 3]}" for i in range(30))),
        "rt_names": _csv(d / "rt.csv", "text,label",
                         *(f"s {i},{'fresh' if i % 2 else 'rotten'}" for i in range(20))),
        "one_class": _csv(d / "one-class.csv", "text,label", *(f"s {i},pos" for i in range(10))),
        "empty": _csv(d / "empty.csv", ""),
        "header_only": _csv(d / "header-only.csv", "text,label"),
        "no_text": _csv(d / "no-text.csv", "review,label", *rows),
        "empty_label": _csv(d / "empty-label.csv", "text,label", *rows, "one more,"),
        "nan_label": _csv(d / "nan-label.csv", "text,label", *rows, "one more,NaN"),
        "empty_text": _csv(d / "empty-text.csv", "text,label", *rows, '"  ",pos'),
        "latin1": _csv(d / "latin1.csv", "text,label", *rows, b"caf\xe9,pos"),
        "huge_field": _csv(d / "huge-field.csv", "text,label", *rows, "x" * 200_000 + ",pos"),
        "ragged": _csv(d / "ragged.csv", "text,label", *rows, "a,pos,extra"),
        "dup_header": _csv(d / "dup-header.csv", "text,label,label", *(r + ",x" for r in rows)),
        "bad_split": _csv(d / "bad-split.csv", "text,label,split", *(r + ",validation"
                                                                    for r in rows)),
        "no_test": _csv(d / "no-test.csv", "text,label,split", *split_rows),
        "unlabelled": _csv(d / "unlabelled.csv", "text", *(f"s {i}" for i in range(20))),
        "bad_jsonl": _csv(d / "bad.jsonl", '{"text": "a", "label": "pos"}', "{not json"),
        "list_jsonl": _csv(d / "list.jsonl", '{"text": "a", "label": "pos"}', "[1, 2]"),
        "jsonl_list_label": _csv(d / "list-label.jsonl", '{"text": "a", "label": "pos"}',
                                 '{"text": "b", "label": ["neg"]}'),
        "txt": _csv(d / "notes.txt", "just text"),
    }


@pytest.fixture(scope="session")
def world(tmp_path_factory, tiny_bert_dir, tiny_plain_dir, sentiment_csv) -> World:
    from tests.adversarial.worldfiles import add_files, add_recipes

    root = tmp_path_factory.mktemp("adversarial-world")
    w = World(root, models=_models(root, tiny_bert_dir, tiny_plain_dir),
              data=_data(root, sentiment_csv))
    w.files = add_files(root)
    w.recipes = add_recipes(root, w)
    return w


runner = CliRunner()


@pytest.fixture
def expect_refusal(world, tmp_path, monkeypatch):
    """expect_refusal(args, substring, code=2): run the command, assert the refusal contract."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))

    def check(args: list[str], substring: str, code: int = 2) -> str:
        before = snapshot(world.root, tmp_path)
        result = runner.invoke(app, [str(a) for a in args])
        output = result.output
        assert result.exit_code == code, f"exit {result.exit_code}: {output}"
        assert "Traceback" not in output, output
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1, output
        assert substring.lower() in lines[0].lower(), lines[0]
        after = snapshot(world.root, tmp_path)
        assert sorted(set(after) - set(before)) == [], "new files"
        changed = sorted(p for p in before if after.get(p) != before[p])
        assert changed == [], "changed or removed"
        return lines[0]

    return check


def cases(*rows):
    """(id, args(world, tmp), substring[, code][, xfail reason]) -> pytest.param rows."""
    params = []
    for row in rows:
        name, build, substring, *rest = row
        code = next((x for x in rest if isinstance(x, int)), 2)
        reason = next((x for x in rest if isinstance(x, str)), None)
        marks = [pytest.mark.xfail(strict=False, reason=reason)] if reason else []
        params.append(pytest.param(build, substring, code, id=name, marks=marks))
    return params
