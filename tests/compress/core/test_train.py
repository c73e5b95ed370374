import pytest
import torch

from edgecompress.compress.core.train import FinetuneConfig, batch_indices, train_classifier
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
    first_epoch = [i for step in range(2) for i in batch_indices(step, 10, config)]
    assert sorted(first_epoch) == list(range(10))
    again = [i for step in range(2) for i in batch_indices(step, 10, config)]
    assert first_epoch == again


def test_training_lowers_the_loss_when_run_for_a_few_epochs(tmp_path):
    loaded = tiny_bert()
    config = FinetuneConfig(epochs=8, batch_size=8, learning_rate=3e-3, checkpoint_every=1000)
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
