import numpy as np
import pytest
import torch

from edgecompress.compress.training.train import (
    BatchOrder,
    FinetuneConfig,
    resolve_precision,
    train_classifier,
)
from tests.models import tiny_bert

TEXTS = ["a wonderful film", "a dull mess", "brilliant and funny", "boring, far too long",
         "an absolute delight", "a tedious waste of time", "warm and clever", "lifeless"] * 4
LABELS = [1, 0, 1, 0, 1, 0, 1, 0] * 4


def _weights(loaded):
    return {k: v.clone() for k, v in loaded.module.state_dict().items()}


class Interrupt(Exception):
    pass


def test_config_rejects_learning_rate_when_out_of_range():
    with pytest.raises(ValueError, match="learning_rate"):
        FinetuneConfig(learning_rate=5.0)


def test_batch_order_is_a_permutation_per_epoch_when_seeded():
    config = FinetuneConfig(batch_size=5, epochs=2)
    first_epoch = [i for step in range(2) for i in BatchOrder(10, config)(step)]
    assert sorted(first_epoch) == list(range(10))
    again = [i for step in range(2) for i in BatchOrder(10, config)(step)]
    assert first_epoch == again


def test_length_buckets_cut_padding_and_still_see_every_example_once():
    config = FinetuneConfig(batch_size=8, epochs=2)
    lengths = np.random.default_rng(0).integers(5, 60, size=203)
    order = BatchOrder(203, config, lengths)
    plain = BatchOrder(203, config)
    epoch = [order(step) for step in range(order.per_epoch)]
    assert sorted(np.concatenate(epoch).tolist()) == list(range(203))
    assert [len(b) for b in epoch].count(8) == order.per_epoch - 1  # one short batch only

    def padded(batches):  # tokens a batch is padded to, summed over the epoch
        return sum(int(lengths[b].max()) * len(b) for b in batches)

    assert padded(epoch) < 0.75 * padded([plain(step) for step in range(plain.per_epoch)])
    again = BatchOrder(203, config, lengths)
    assert all((again(step) == order(step)).all() for step in range(2 * order.per_epoch))
    second = [order(step) for step in range(order.per_epoch, 2 * order.per_epoch)]
    assert [b.tolist() for b in second] != [b.tolist() for b in epoch]  # reshuffled per epoch


def test_length_buckets_off_gives_the_plain_order():
    config = FinetuneConfig(batch_size=8, length_buckets=False)
    lengths = np.arange(40)
    assert all((BatchOrder(40, config, lengths)(s) == BatchOrder(40, config)(s)).all()
               for s in range(5))


def test_precision_resolves_to_a_concrete_one():
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") in ("fp32", "bf16")
    with pytest.raises(ValueError, match="precision"):
        FinetuneConfig(precision="fp16")


def test_training_lowers_the_loss_when_run_for_a_few_epochs(tmp_path):
    loaded = tiny_bert()
    # 8 distinct sentences: length buckets would make each batch one sentence (one label)
    config = FinetuneConfig(epochs=8, batch_size=8, learning_rate=3e-3, checkpoint_every=1000,
                            length_buckets=False)
    losses = []
    train_classifier(loaded, TEXTS, LABELS, config, tmp_path / "ckpt",
                     on_step=lambda step, total, loss: losses.append(loss))
    assert len(losses) == 32
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.1


def test_resume_after_interruption_reproduces_the_uninterrupted_weights(tmp_path):
    config = FinetuneConfig(epochs=3, batch_size=8, learning_rate=1e-3, checkpoint_every=3)
    straight = tiny_bert(seed=1)
    train_classifier(straight, TEXTS, LABELS, config, tmp_path / "a")

    interrupted = tiny_bert(seed=1)

    def stop_at_seven(step, total, loss):
        if step == 7:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_classifier(interrupted, TEXTS, LABELS, config, tmp_path / "b",
                         on_step=stop_at_seven)
    resumed = tiny_bert(seed=2)  # different init: everything must come from the checkpoint
    result = train_classifier(resumed, TEXTS, LABELS, config, tmp_path / "b")
    assert result["resumed_from"] == 6
    for key, value in _weights(straight).items():
        torch.testing.assert_close(_weights(resumed)[key], value, rtol=0, atol=1e-6)


def test_frozen_embeddings_stay_as_they_were_while_the_rest_trains(tmp_path):
    loaded = tiny_bert(seed=3)
    before = _weights(loaded)
    config = FinetuneConfig(epochs=2, batch_size=8, learning_rate=1e-3, checkpoint_every=1000,
                            freeze_embeddings=True)
    train_classifier(loaded, TEXTS, LABELS, config, tmp_path / "ckpt")
    after = _weights(loaded)
    frozen = [k for k in before if "word_embeddings" in k]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    moved = [k for k in before
             if "word_embeddings" not in k and not torch.equal(before[k], after[k])]
    assert len(moved) > len(before) // 2
