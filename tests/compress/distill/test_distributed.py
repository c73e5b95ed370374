"""`torchrun --nproc-per-node 2 edgecompress distill`: two CPU processes (gloo) take the same
optimizer steps as one process seeing the same batches, and rank 0 alone writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecompress.compress.distill.distributed import World
from tests.models import save_tiny, tiny_bert

EDGECOMPRESS = Path(sys.executable).parent / "edgecompress"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


@pytest.fixture(scope="module")
def still_teacher(tmp_path_factory) -> Path:
    """A tiny BERT without dropout: a step's result then depends on the batch alone, not on
    which process drew which dropout mask."""
    loaded = tiny_bert(seed=3)
    loaded.module.hf.config.hidden_dropout_prob = 0.0
    loaded.module.hf.config.attention_probs_dropout_prob = 0.0
    loaded.module.hf.config.classifier_dropout = 0.0
    return save_tiny(loaded, tmp_path_factory.mktemp("still-teacher"))


def _distill(launcher: list[str], teacher: Path, data: Path, out: Path, config: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    args = ["distill", "--teacher", str(teacher), "--student", "layers:1", "--dataset",
            # 7 rows: shards of 4 and 3
            str(data), "--out", str(out), "--batch-size", "7", "--max-steps", "5",

            "--lr", "1e-3", "--config", str(config), "--json"]
    return subprocess.run([*launcher, str(EDGECOMPRESS), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _weights(directory: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(directory / "model.safetensors"))


def test_two_processes_reach_the_weights_of_one_when_they_see_the_same_batches(
        still_teacher, sentiment_csv, tmp_path):
    config = tmp_path / "distill.toml"
    config.write_text("[distill.train]\nepochs = 3\nprecision = \"fp32\"\n")  # not bf16: exact
    one = _distill([], still_teacher, sentiment_csv, tmp_path / "one", config)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _distill(TORCHRUN, still_teacher, sentiment_csv, tmp_path / "two", config)
    assert two.returncode == 0, two.stderr[-2000:]
    manifest = json.loads(two.stdout)  # rank 0 alone prints: one JSON document
    assert manifest["processes"] == 2 and manifest["steps_done"] == 5
    assert json.loads(one.stdout)["processes"] == 1
    single, double = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert set(single) == set(double)
    moved = max(float(np.abs(single[k] - _weights(still_teacher).get(k, single[k])).max())
                for k in single)
    assert moved > 1e-3  # training changed the weights, so the comparison below means something
    for name in single:
        np.testing.assert_allclose(double[name], single[name], atol=2e-5, rtol=0, err_msg=name)
    assert not list(tmp_path.glob(".two.ckpt*"))  # rank 0 cleaned its checkpoints up


def test_world_shards_a_batch_and_weights_losses_to_the_batch_mean():
    world = World(rank=1, size=3)
    shards = [World(r, 3).shard(np.arange(8)) for r in range(3)]
    assert [s.tolist() for s in shards] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert world.shard(np.arange(8)).tolist() == [3, 4, 5]
    # weighted shard means, averaged over ranks, give the mean over the whole batch
    values = np.arange(8.0)
    scaled = [World(r, 3).loss_scale(len(s), 8) * values[s].mean() for r, s in enumerate(shards)]
    assert np.mean(scaled) == pytest.approx(values.mean())
    assert World().shard(np.arange(4)).tolist() == [0, 1, 2, 3] and World().loss_scale(2, 4) == 1
