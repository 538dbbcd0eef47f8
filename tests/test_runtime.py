"""The shared model runtime on the real offline models (slow) and on tiny models built here."""
import json
from pathlib import Path

import numpy as np
import pytest

from recipe.diagnostics import UserError
from recipe.runtime import ModelRuntime
from recipe.runtime.batching import pack_rows, token_batches, unique_order

from conftest import EMB, LM, dequantised

TEXTS = ["How do I sort a list in Python?", "Explain photosynthesis.", "How do I sort a list in Python?",
         "Write a haiku about the sea.", "What is 2 + 2?"]


def test_token_batches_respect_budget_and_order():
    lens = [5, 50, 7, 300, 20, 20]
    batches = token_batches(lens, budget=100)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) == 1 or max(lens[i] for i in b) * len(b) <= 100
    assert batches[0] == [3]  # longest first, alone because it exceeds the budget
    uniq, back = unique_order(["a", "b", "a", "c"])
    assert uniq == [0, 1, 3] and back == [0, 1, 0, 2]


def test_pack_rows_fill_rows_without_splitting_items():
    lens = [5, 50, 7, 300, 20, 20, 90, 3]
    rows = pack_rows(lens, row_len=100)
    assert sorted(i for r in rows for i in r) == list(range(len(lens)))
    for r in rows:
        assert len(r) == 1 or sum(lens[i] for i in r) <= 100
    assert [3] in rows  # longer than a row: alone
    assert len(rows) == 3  # 300 | 90+7 | 50+20+20+5+3: as few rows as the tokens allow


def test_missing_model_is_a_clear_error(tmp_path):
    rt = ModelRuntime(tmp_path)
    with pytest.raises(UserError, match="model not found at `/no/such/model`"):
        rt.embed({"kind": "embedding", "source": "/no/such/model", "options": {}, "identity": "x"}, ["a"])
    with pytest.raises(UserError, match="openai:BASE_URL#MODEL"):
        rt.embed({"kind": "embedding", "source": "openai:http://localhost:1", "options": {}, "identity": "y"}, ["a"])


def _tiny_lm(path, arch="llama"):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers
    vocab = {f"w{i}": i for i in range(60)} | {"[UNK]": 60, "[PAD]": 61}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    torch.manual_seed(0)
    if arch == "gpt2":  # absolute positions: packing must restart them per pair
        model = GPT2LMHeadModel(GPT2Config(vocab_size=62, n_embd=32, n_layer=2, n_head=4, n_positions=128))
    else:  # rotary positions
        model = LlamaForCausalLM(LlamaConfig(vocab_size=62, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return model, fast


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_tiny_model_loglik_matches_direct_forward(tmp_path, arch):
    import torch
    model, tok = _tiny_lm(tmp_path / "lm", arch)
    model.eval()
    decl = {"kind": "causal_lm", "source": str(tmp_path / "lm"), "options": {"dtype": "fp32"}, "identity": "tiny"}
    rt = ModelRuntime(tmp_path / "cache")
    # several pairs share one packed sequence; the long one (over a 128-token row) goes alone
    prompts = ["w1 w2 w3", "w4", "w5 w6 w7 w8 w9", "w1 w2 w3", " ".join(f"w{i % 50}" for i in range(150)), ""]
    conts = ["w10 w11", "w12 w13 w14", "w15", "w10 w11", "w7 w8", "w3 w4 w5"]
    got = rt.loglik(decl, prompts, conts)
    for p, c, g in zip(prompts, conts, got):
        pi, ci = tok(p, add_special_tokens=False)["input_ids"], tok(c, add_special_tokens=False)["input_ids"]
        pi = pi[-(128 - len(ci)):]  # the runtime keeps the end of a prompt that does not fit
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([pi + ci])).logits[0].float(), -1)
        scored = range(1, len(ci)) if not pi else range(len(ci))  # no context, no score
        want = sum(float(logp[len(pi) - 1 + j, ci[j]]) for j in scored)
        assert g["tokens"] == len(scored) and abs(g["logprob"] - want) < 1e-4
    # next-token probabilities of a few choices after each prompt, packed the same way
    choices = ["w20", "w21", "w22"]
    got = rt.choice_probs(decl, prompts[:5], choices)
    ids = [tok(c, add_special_tokens=False)["input_ids"][0] for c in choices]
    for p, g in zip(prompts[:5], got):
        pi = tok(p, add_special_tokens=False)["input_ids"][-128:]
        with torch.no_grad():
            want = torch.softmax(model(torch.tensor([pi])).logits[0, -1].float(), -1)[ids]
        assert np.allclose(g, want.numpy(), atol=1e-5)
    st = rt.stats()["tiny"]
    assert st["loads"] == 1 and st["requests"] == 6 + 5 and st["computed"] == 5 + 4  # duplicates computed once
    rt.loglik(decl, prompts, conts)
    assert rt.stats()["tiny"]["cache_hits"] == 5 and rt.stats()["tiny"]["computed"] == 9


@pytest.mark.slow
def test_embed_equals_sentence_transformers(runtime):
    from sentence_transformers import SentenceTransformer
    from recipe.runtime.resolve import resolve
    direct = SentenceTransformer(str(resolve("builtin:minilm").path), device="cpu").encode(
        TEXTS, normalize_embeddings=True)
    got = runtime.embed(EMB, TEXTS)
    assert got.dtype == np.float32 and got.shape == direct.shape
    cos = (got * direct).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(direct, axis=1)
    assert cos.min() > 0.999
    before = runtime.stats()[EMB["identity"]]["cache_hits"]
    again = runtime.embed(EMB, TEXTS)
    assert runtime.stats()[EMB["identity"]]["cache_hits"] == before + 4
    assert np.allclose(again, got, atol=1e-3)


@pytest.mark.slow
def test_loglik_equals_direct_fp32_forward(runtime, model_cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    prompts = ["The capital of France is", "Q: What is 2 + 2?\nA:"]
    conts = [" Paris, a city on the Seine.", " 4"]
    got = runtime.loglik(LM, prompts, conts)
    saved = dequantised(model_cache)
    tok = AutoTokenizer.from_pretrained(saved)
    model = AutoModelForCausalLM.from_pretrained(saved, dtype=torch.float32).eval()
    for p, c, g in zip(prompts, conts, got):
        pi, ci = tok(p, add_special_tokens=False)["input_ids"], tok(c, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([pi + ci])).logits[0].float(), -1)
        want = sum(float(logp[len(pi) - 1 + j, t]) for j, t in enumerate(ci))
        assert abs(g["logprob"] - want) <= 0.02 * abs(want), (g, want)
    assert runtime.stats()[LM["identity"]]["loads"] == 1


@pytest.mark.slow
def test_generation_is_reproducible_and_cached(runtime, tmp_path, model_cache):
    p = runtime.chat_prompt(LM, "Name three colours.")
    a = runtime.generate(LM, [p], n=2, max_new_tokens=12, temperature=0.8, seed=7)
    # no shared result cache: recomputed from the seed (the converted weights, a function of
    # the checkpoint alone, are shared: converting again cost 20 s and tested nothing here)
    fresh = ModelRuntime(tmp_path, weights_dir=model_cache)
    b = fresh.generate(LM, [p], n=2, max_new_tokens=12, temperature=0.8, seed=7)
    assert a == b and len(a[0]) == 2
    g1 = runtime.generate(LM, [p], max_new_tokens=8)
    assert runtime.generate(LM, [p], max_new_tokens=8) == g1
    probs = runtime.choice_probs(LM, [p], ["1", "2"])
    assert probs.shape == (1, 2) and (probs >= 0).all() and probs.sum() <= 1.0


@pytest.mark.slow
def test_one_load_per_model_across_operators(tmp_path, model_cache):
    from recipe.api import load
    from conftest import alpaca_rows, write_jsonl
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(6))
    text = f'''recipe t
model lm = causal_lm("builtin:smollm2")
model emb = embedding("builtin:minilm")
source raw = read("{data}")
a = raw
  | score(metric="ifd", model=lm)
  | score(metric="perplexity", model=lm)
  | score(metric="judge", model=lm)
  | dedupe(method="semantic", embedding=emb, threshold=0.99)
  | select(method="kcenter", k=3, embedding=emb)
write a to "a.jsonl"
'''
    rt = ModelRuntime(model_cache)
    res = load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c", runtime=rt)
    stats = res.manifest["model_runtime"]
    lm = next(v for k, v in stats.items() if "smollm2" in k)
    emb = next(v for k, v in stats.items() if "minilm" in k)
    assert lm["loads"] <= 1 and emb["loads"] <= 1
    # semantic dedupe and kcenter embed the same instructions: the second is all cache hits
    assert emb["cache_hits"] >= 3
    rows = [json.loads(l) for l in (tmp_path / "o" / "a.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["ifd"] > 0 and 1 <= r["judge"] <= 5 for r in rows)


def test_generation_counts_the_tokens_it_reads_and_writes(tmp_path):
    # the models table said 0 tokens for every generation request
    model, tok = _tiny_lm(tmp_path / "lm")
    decl = {"kind": "causal_lm", "source": str(tmp_path / "lm"), "options": {"dtype": "fp32"}, "identity": "tiny-gen"}
    rt = ModelRuntime(tmp_path / "cache")
    out = rt.generate(decl, ["w1 w2 w3", "w4 w5"], max_new_tokens=4)
    written = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for outs in out for t in outs)
    assert written > 0 and rt.usage()["tokens"] == 5 + written


def test_a_model_call_stopped_midway_keeps_the_pieces_it_finished(tmp_path, monkeypatch):
    import recipe.runtime as rtmod
    _tiny_lm(tmp_path / "lm")
    decl = {"kind": "causal_lm", "source": str(tmp_path / "lm"), "options": {"dtype": "fp32"}, "identity": "tiny"}
    prompts, conts = [f"w{i} w{i + 1}" for i in range(7)], [f"w{i + 2} w{i + 3}" for i in range(7)]
    want = ModelRuntime(tmp_path / "ref").loglik(decl, prompts, conts)
    monkeypatch.setattr(rtmod, "SAVE_EVERY", 3)
    rt = ModelRuntime(tmp_path / "cache")
    real, calls = rt._call, []

    def dying(d, call):
        fn = real(d, call)

        def piece(items, progress):
            calls.append(len(items))
            if len(calls) == 2:  # stopped (Ctrl-C, SIGKILL) in the second piece
                raise KeyboardInterrupt
            return fn(items, progress)
        return piece
    monkeypatch.setattr(rt, "_call", dying)
    with pytest.raises(KeyboardInterrupt):
        rt.loglik(decl, prompts, conts)
    assert calls == [3, 3]
    again = ModelRuntime(tmp_path / "cache")  # the next run: the first piece comes from the cache
    assert again.loglik(decl, prompts, conts) == want
    st = again.stats()["tiny"]
    assert st["cache_hits"] == 3 and st["computed"] == 4


def test_sampled_generation_draws_each_completion_from_its_own_seed(tmp_path, monkeypatch):
    from recipe.runtime import hf
    _tiny_lm(tmp_path / "lm")
    decl = {"kind": "causal_lm", "source": str(tmp_path / "lm"), "options": {"dtype": "fp32"}, "identity": "tiny"}
    prompts = [f"w{i} w{i + 3} w{i + 7}" for i in range(5)]
    calls = []
    real = hf.CausalLM.generate_batch
    monkeypatch.setattr(hf.CausalLM, "generate_batch", lambda self, ps, *a: calls.append(len(ps)) or real(self, ps, *a))
    rt = ModelRuntime(tmp_path / "c1")
    rt.invariant = False  # as on a GPU: sampled prompts are batched
    batched = rt.generate(decl, prompts, n=2, max_new_tokens=6, temperature=1.0, seed=3)
    assert calls == [5]
    alone = []
    for i, p in enumerate(prompts):
        fresh = ModelRuntime(tmp_path / f"alone{i}")
        fresh.invariant = False
        alone += fresh.generate(decl, [p], n=2, max_new_tokens=6, temperature=1.0, seed=3)
    assert batched == alone  # a completion's draws are its own, whatever else is in the batch
    assert all(len(c) == 2 for c in batched) and any(a != b for a, b in batched)  # two samples each
    other = ModelRuntime(tmp_path / "c2")
    other.invariant = False
    assert other.generate(decl, prompts, n=2, max_new_tokens=6, temperature=1.0, seed=4) != batched
    # batch-invariant mode (a CPU's default): prompts of one token length batched together only
    calls.clear()
    inv = ModelRuntime(tmp_path / "c3")
    odd = prompts + ["w9"]
    got = inv.generate(decl, odd, n=2, max_new_tokens=6, temperature=1.0, seed=3)
    assert inv.invariant and got[:5] == batched and sorted(calls) == [1, 5]


def test_generation_in_batch_invariant_mode_batches_one_length_in_float32_and_leaves_the_model_as_it_was(tmp_path, monkeypatch):
    import torch
    from recipe.runtime import hf
    _tiny_lm(tmp_path / "lm")
    decl = {"kind": "causal_lm", "source": str(tmp_path / "lm"), "options": {"dtype": "bf16"}, "identity": "tiny16"}
    rt = ModelRuntime(tmp_path / "c")
    assert rt.invariant
    before = rt.loglik(decl, ["w1 w2"], ["w3 w4"])
    seen = []
    real = hf.CausalLM.generate_batch
    monkeypatch.setattr(hf.CausalLM, "generate_batch", lambda self, ps, *a: seen.append(
        (sorted(len(self.encode(p)) for p in ps), self.model.dtype, torch.get_num_threads())) or real(self, ps, *a))
    threads = torch.get_num_threads()
    prompts = ["w1 w2", "w5", "w7 w8", "w3 w4 w5"]
    got = rt.generate(decl, prompts, max_new_tokens=4)
    # batches of one prompt length (no padding), in float32, on one thread (two threads' batched
    # products rounded differently from run to run): each prompt comes out as it does alone
    assert sorted(seen) == [([1], torch.float32, 1), ([2, 2], torch.float32, 1), ([3], torch.float32, 1)]
    assert torch.get_num_threads() == threads
    alone = []
    for i, p in enumerate(prompts):
        alone += ModelRuntime(tmp_path / f"alone{i}").generate(decl, [p], max_new_tokens=4)
    assert got == alone
    m = rt.model(decl).m.model
    assert m.dtype == torch.bfloat16
    # bf16 -> fp32 -> bf16 changed no weight: the model scores as one that never generated
    after = rt.loglik(decl, ["w2 w3"], ["w5 w6"])
    fresh = ModelRuntime(tmp_path / "c2")
    assert fresh.loglik(decl, ["w2 w3"], ["w5 w6"]) == after and fresh.loglik(decl, ["w1 w2"], ["w3 w4"]) == before


@pytest.mark.slow
def test_token_counts_are_the_tokenizers_own_with_the_chat_template_for_a_conversation(runtime):
    """`score(metric="tokens", model=lm, on=conversation)`: a conversation rendered and then
    tokenized without special tokens is the template's own tokenization (no second BOS)."""
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "4."}, {"role": "user", "content": "And 3 + 3?"},
            {"role": "assistant", "content": "6."}]
    tok = runtime.model(LM).tok
    got = runtime.token_counts(LM, [chat, "Hello there, world.", ""])
    assert got == [len(tok.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]), len(tok("Hello there, world.")["input_ids"]), 0]
    assert got[0] > sum(len(tok(m["content"])["input_ids"]) for m in chat)  # the template's own tokens count
    mini = runtime.model(EMB).m.model.tokenizer
    assert runtime.token_counts(EMB, ["Hello there, world."]) == [len(mini("Hello there, world.", add_special_tokens=False)["input_ids"])]


def test_generation_stops_at_a_stop_string_with_the_text_it_would_have_had(tmp_path):
    """A completion with `stop` is the whole completion cut before the first stop string, greedy
    and sampled, batched with rows that go on."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import tiny_chat_lm
    from recipe.runtime.backends import cut_at_stop
    tiny_chat_lm(tmp_path / "lm")
    decl = {"kind": "causal_lm", "source": str(tmp_path / "lm"), "options": {"dtype": "fp32"}, "identity": "tiny-stop"}
    prompts = ["user w1 w2 assistant", "user w5 assistant", "user w9 w10 w11 assistant"]
    for temperature in (0.0, 1.0):
        full = ModelRuntime(tmp_path / "a").generate(decl, prompts, n=2, max_new_tokens=12, temperature=temperature,
                                                     seed=3)
        words = {w for outs in full for t in outs for w in t.split()[2:4]}  # words some rows write midway
        stop = sorted(words)[:2]
        cut = ModelRuntime(tmp_path / "b").generate(decl, prompts, n=2, max_new_tokens=12, temperature=temperature,
                                                    seed=3, stop=stop)
        assert cut == [[cut_at_stop(t, stop) for t in outs] for outs in full]
        assert any(len(c) < len(f) for co, fo in zip(cut, full) for c, f in zip(co, fo))


def test_a_gguf_header_is_parsed_once_while_dequantising_and_the_library_is_left_as_it_was(tmp_path):
    import gguf
    from recipe.runtime.hf import _gguf_read_once
    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("general.name", "tiny")
    w.add_block_count(2)
    w.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    make, table = gguf.GGUFReader, gguf.get_tensor_name_map
    with _gguf_read_once():
        a, b = gguf.GGUFReader(str(path)), gguf.GGUFReader(path)  # transformers passes either
        assert a is b and bytes(a.fields["general.name"].parts[-1]).decode() == "tiny"
        assert np.array_equal(np.asarray(a.tensors[0].data), np.arange(12, dtype=np.float32).reshape(3, 4))
        names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert names is gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert names.get_name("model.layers.1.self_attn.q_proj") == "blk.1.attn_q"
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 3) is not names
    assert gguf.GGUFReader is make and gguf.get_tensor_name_map is table
    assert gguf.GGUFReader(str(path)) is not gguf.GGUFReader(str(path))


def test_scores_do_not_depend_on_torchs_thread_count(tmp_path):
    """On a CPU each text is scored alone on one thread, the texts spread over torch's threads
    (generation's batches run on one thread): the same bits whatever the machine's cores (or a
    Ray actor's share of them). Before, the tiny model's perplexities on two threads moved in
    the 7th digit against one."""
    import torch
    from conftest import alpaca_rows, tiny_chat_lm, tiny_reward
    tiny_chat_lm(tmp_path / "lm")
    tiny_reward(tmp_path / "rm")
    lm = {"kind": "causal_lm", "source": str(tmp_path / "lm"), "options": {"dtype": "fp32"}, "identity": "tiny-lm"}
    rm = {"kind": "reward", "source": str(tmp_path / "rm"), "options": {}, "identity": "tiny-rm"}
    rows = alpaca_rows(12)
    prompts, conts = [r["instruction"] for r in rows], [r["output"] for r in rows]
    words = [" ".join(f"w{(i + j) % 40}" for j in range(i % 5 + 1)) for i in range(12)]  # five lengths
    before = torch.get_num_threads()
    got = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            rt = ModelRuntime(tmp_path / f"cache{n}", device="cpu")
            got[n] = (rt.loglik(lm, prompts, conts), rt.classify(rm, prompts, conts).tolist(),
                      rt.choice_probs(lm, prompts, ["w1", "w2"]).tolist(),
                      # generation: batches of one prompt length, on one thread
                      rt.generate(lm, words, max_new_tokens=5),
                      rt.generate(lm, words, n=2, max_new_tokens=5, temperature=1.0, seed=3))
            assert torch.get_num_threads() == n  # left as it was
    finally:
        torch.set_num_threads(before)
    assert got[1] == got[2]
