"""A local model folder that cannot serve its declared kind is refused by `check` (or, where
only loading can tell, by the runtime) instead of loading with random weights or failing
mid-run. Tiny models built here; found on a real try (MiniLM declared as causal_lm scored IFD
with a randomly initialised language-model head and said nothing)."""
import json

import pytest
from safetensors.torch import load_file, save_file

from recipe.api import load
from recipe.diagnostics import UserError
from recipe.runtime import ModelRuntime

from conftest import alpaca_rows, write_jsonl


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {f"w{i}": i for i in range(60)} | {"[UNK]": 60, "[PAD]": 61}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")


def _save(model, path):
    model.save_pretrained(path)
    _tokenizer().save_pretrained(path)
    return path


def _llama(path):
    from transformers import LlamaConfig, LlamaForCausalLM
    return _save(LlamaForCausalLM(LlamaConfig(vocab_size=62, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                              num_attention_heads=2, num_key_value_heads=2,
                                              tie_word_embeddings=False)), path)


def _encoder(path):
    from transformers import BertConfig, BertModel
    return _save(BertModel(BertConfig(vocab_size=62, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=32)), path)


def _recipe(kind, where, data, **opts):
    extra = "".join(f', {k}="{v}"' for k, v in opts.items())
    use = {"causal_lm": 'score(metric="ifd", model=m, column="q")', "reward": 'score(metric="reward", model=m)',
           "embedding": 'select(method="kcenter", k=2, embedding=m)'}[kind]
    return f'''recipe t
model m = {kind}("{where}"{extra})
source raw = read("{data}")
x = raw | {use}
write x to "x.jsonl"
'''


def _errors(text):
    return [(d.code, d.message) for d in load(text).diagnose().diagnostics if d.is_error]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"llama": _llama(root / "llama"), "encoder": _encoder(root / "encoder"), "root": root,
            "data": write_jsonl(root / "d.jsonl", alpaca_rows(3))}


def test_an_encoder_is_refused_as_a_causal_lm_or_reward_model_and_accepted_as_an_embedder(folders):
    enc = folders["encoder"]
    for kind in ("causal_lm", "reward"):
        (code, msg), = _errors(_recipe(kind, enc, folders["data"]))
        assert code == "E0307" and "BertModel" in msg and "random" in msg
    assert _errors(_recipe("embedding", enc, folders["data"])) == []
    assert _errors(_recipe("causal_lm", folders["llama"], folders["data"])) == []


def test_a_folder_missing_what_loading_needs_is_refused_by_check(folders):
    root, llama = folders["root"], folders["llama"]
    cases = {"config_only": ["config.json"], "no_tokenizer": ["config.json", "model.safetensors"]}
    for name, files in cases.items():
        (root / name).mkdir()
        for f in files:
            (root / name / f).write_bytes((llama / f).read_bytes())
    pickled = root / "pickled"
    pickled.mkdir()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (pickled / f).write_bytes((llama / f).read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"not read")
    cut = root / "cut"
    cut.mkdir()
    (cut / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], ')
    want = {"config_only": "no weights", "no_tokenizer": "no tokenizer", "pickled": "pytorch_model.bin",
            "cut": "not valid JSON"}
    for name, words in want.items():
        (code, msg), = _errors(_recipe("causal_lm", root / name, folders["data"]))
        assert code == "E0312" and words in msg, (name, msg)
    # an endpoint's tokenizer= is a folder too
    (code, msg), = _errors(_recipe("causal_lm", "openai:http://127.0.0.1:9/v1#m", folders["data"], tokenizer=root / "config_only"))
    assert code == "E0312" and "no tokenizer" in msg
    assert _errors(_recipe("causal_lm", "openai:http://127.0.0.1:9/v1#m", folders["data"], tokenizer=llama)) == []


def _without(src, dst, drop_key, drop_arch=True):
    """A copy of a saved model whose checkpoint lacks the weights named `drop_key` (and whose
    config does not say its architecture, so only loading can tell)."""
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(src / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith(drop_key)}, str(dst / "model.safetensors"),
              metadata={"format": "pt"})
    cfg = json.loads((src / "config.json").read_text())
    if drop_arch:
        cfg.pop("architectures", None)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_weights_the_checkpoint_lacks_stop_the_run_instead_of_being_random(folders, tmp_path):
    headless = _without(folders["llama"], tmp_path / "headless", "lm_head")
    assert _errors(_recipe("causal_lm", headless, folders["data"])) == []  # nothing in the folder's files says so
    rt = ModelRuntime(tmp_path / "cache")
    decl = {"kind": "causal_lm", "source": str(headless), "options": {"dtype": "fp32"}, "identity": "headless"}
    with pytest.raises(UserError, match=r"lacks weights a causal_lm needs \(lm_head.weight\)"):
        rt.loglik(decl, ["w1 w2"], ["w3"])
    # the whole model loads and scores
    whole = {"kind": "causal_lm", "source": str(folders["llama"]), "options": {"dtype": "fp32"}, "identity": "whole"}
    assert rt.loglik(whole, ["w1 w2"], ["w3"])[0]["tokens"] == 1


def test_a_base_encoder_as_a_reward_model_stops_with_the_reason(folders, tmp_path):
    headless = _without(folders["encoder"], tmp_path / "enc", "no-such-key")  # architectures dropped only
    with pytest.raises(UserError, match="lacks weights a classifier needs"):
        load(_recipe("reward", headless, folders["data"])).run(out=tmp_path / "o", cache_dir=tmp_path / "c")


def test_builtins_and_gguf_files_serve_only_their_kind(folders, tmp_path):
    data = folders["data"]
    for kind, source, words in (("causal_lm", "builtin:minilm", "an embedding model"),
                                ("reward", "builtin:minilm", "an embedding model"),
                                ("embedding", "builtin:smollm2", "a causal language model")):
        (code, msg), = _errors(_recipe(kind, source, data))
        assert code == "E0307" and words in msg
    assert _errors(_recipe("embedding", "builtin:minilm", data)) == []
    fake = tmp_path / "model.gguf"
    fake.write_text("<html>404</html>")
    (code, msg), = _errors(_recipe("causal_lm", fake, data))
    assert code == "E0312" and "not a GGUF file" in msg
    real = tmp_path / "real.gguf"
    real.write_bytes(b"GGUF" + bytes(60))
    (code, msg), = _errors(_recipe("embedding", real, data))
    assert code == "E0307" and "GGUF" in msg
    (code, msg), = _errors(_recipe("causal_lm", "", data))
    assert code == "E0312" and "empty" in msg


def test_sentence_transformers_folders_are_read_through_their_modules(folders, tmp_path):
    from recipe.runtime.resolve import resolve
    data = folders["data"]
    assert _errors(_recipe("embedding", resolve("builtin:minilm").path, data)) == []  # the real MiniLM folder
    st = tmp_path / "st"
    st.mkdir()
    (st / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "0_Transformer",
                                                  "type": "sentence_transformers.models.Transformer"}]))
    (code, msg), = _errors(_recipe("embedding", st, data))
    assert code == "E0312" and "0_Transformer" in msg
    clip = tmp_path / "clip"  # no Transformer module: sentence-transformers decides
    clip.mkdir()
    (clip / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.CLIPModel"}]))
    assert _errors(_recipe("embedding", clip, data)) == []
