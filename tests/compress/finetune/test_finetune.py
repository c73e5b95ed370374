import torch
from safetensors.torch import load_file

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.finetune.stage import FinetuneRequest, run_finetune
from edgecompress.compress.training.config import FinetuneConfig
from tests.models import tokenizer


def _encoder_checkpoint(directory):
    """A tiny BERT encoder without a classification head (like all-MiniLM-L6-v2)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer().vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(directory))
    tokenizer().save_pretrained(str(directory))
    return directory


def _weights(directory):
    (file,) = directory.glob("*.safetensors")
    return load_file(str(file))


def test_the_fresh_head_and_so_the_teacher_do_not_depend_on_the_caller_rng(tmp_path,
                                                                           sentiment_csv):
    model = _encoder_checkpoint(tmp_path / "encoder")
    outs = []
    for k in range(2):
        torch.manual_seed(100 + k)  # whatever ran before in this process
        out = tmp_path / f"teacher-{k}"
        run_finetune(FinetuneRequest(model=str(model), data=DataRef(str(sentiment_csv)), out=out,
                                     config=FinetuneConfig(max_steps=2)))
        outs.append(_weights(out))
    assert outs[0].keys() == outs[1].keys()
    assert all(torch.equal(outs[0][key], outs[1][key]) for key in outs[0])
