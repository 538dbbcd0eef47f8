"""Local Hugging Face models: loading (once, on the best device) and the batched calls.

Never `trust_remote_code`, never a hub download (`local_files_only=True`, HF_HUB_OFFLINE).
A GGUF checkpoint is dequantised by transformers on first load (slow), so the dequantised
weights are saved once as safetensors under the cache directory and loaded from there.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..diagnostics import UserError
from .resolve import Resolved
from .weights_store import describe, mark_used



def _quiet_transformers() -> None:
    """Library progress bars and advice would drown our own progress display."""
    try:
        import transformers
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # older/newer transformers without these helpers: only cosmetic
        pass


def pick_device(device: str = "auto") -> str:
    import torch
    _quiet_transformers()
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            return "amx_bf16" in fh.read(200_000)
    except OSError:
        return False


def pick_dtype(device: str, requested: str | None):
    """bf16 where it is faster (GPUs with bf16, CPUs with AMX), else fp16 on GPU, fp32 on CPU."""
    import torch
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if requested and requested != "auto":
        if requested not in table:
            raise UserError(f"unknown dtype `{requested}`; use auto, fp32, bf16 or fp16")
        return table[requested]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_amx() else torch.float32


FP32_MAX_BYTES = 4 << 30  # a model up to 1B parameters is upcast for generation in batch-invariant mode


def refuse_fresh_weights(info: dict, src, kind: str) -> None:
    """Stop when transformers initialised some of the model's weights at random (missing from
    the checkpoint: an encoder loaded as a causal LM, a base model as a classifier), which
    would score every row with noise and say nothing."""
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise UserError(f"the model at {src} lacks weights a {kind} needs ({', '.join(missing[:3])}{more}): "
                        "transformers would fill them with random values. Give a folder saved from a model of "
                        "this kind (`recipe check` names the folder's architecture)")


def dequantised_dir(cache_root: Path, identity: str) -> Path:
    """Where a GGUF checkpoint's dequantised weights live in a model cache."""
    return Path(cache_root) / "dequantised" / hashlib.sha256(identity.encode()).hexdigest()[:16]


@contextmanager
def _held(path: Path):
    """An exclusive lock on `path` for the block, waiting for another process that holds it
    (two runs, or two test workers, dequantising one GGUF: one writes, the other then loads)."""
    import fcntl
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_GGUF_PATCH = threading.Lock()


@contextmanager
def _gguf_read_once():
    """transformers parses the GGUF's header three times (config, tokenizer, weights: each a
    Python walk over the 49k-token vocabulary, 6 s here) and builds gguf's tensor-name table
    once per module of the model (397 times for SmolLM2, 8 s): within the block, one reader per
    file and one table per (architecture, blocks) serve every call. Both only read. One block
    at a time in a process: two threads' patches would otherwise restore each other's."""
    import gguf
    with _GGUF_PATCH:
        make, table, memo = gguf.GGUFReader, gguf.get_tensor_name_map, {}

        def once(fn):
            def call(*args, **kw):
                key = (fn, tuple(os.fspath(a) if isinstance(a, Path) else a for a in args), tuple(sorted(kw.items())))
                try:
                    hash(key)
                except TypeError:  # arguments another transformers may pass that cannot be keys
                    return fn(*args, **kw)
                if key not in memo:
                    memo[key] = fn(*args, **kw)
                return memo[key]
            return call

        # transformers imports both from the module at each call
        gguf.GGUFReader, gguf.get_tensor_name_map = once(make), once(table)
        try:
            yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = make, table


class CausalLM:
    """A causal LM with its tokenizer; log-likelihoods, choice probabilities, generation."""

    def __init__(self, res: Resolved, cache_root: Path, device: str, dtype: str | None, log=print,
                 on_load=lambda secs: None):
        from transformers import AutoTokenizer
        self.device = device
        self.dtype = pick_dtype(device, dtype)
        src = res.path
        kw = dict(local_files_only=True, trust_remote_code=False)
        if res.gguf_file:
            saved = dequantised_dir(cache_root, res.identity)
            saved.parent.mkdir(parents=True, exist_ok=True)
            with _held(saved.with_name(saved.name + ".lock")):  # another process may be writing it
                self._dequantise(res, saved, kw, log)
            src = saved
        if not (Path(src) / "config.json").exists():
            raise UserError(f"no model at {src} (a local model directory needs config.json)")
        self.tok = AutoTokenizer.from_pretrained(str(src), **kw)
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self._src, self._kw, self._on_load, self._model = src, kw, on_load, None
        from transformers import AutoConfig
        cfg = AutoConfig.from_pretrained(str(src), **kw)
        self.max_len = int(min(getattr(cfg, "max_position_embeddings", 2048) or 2048, 2048))

    @staticmethod
    def _dequantise(res: Resolved, saved: Path, kw: dict, log) -> None:
        """The GGUF's weights saved as safetensors at `saved`, once (a function of the file alone)."""
        if (saved / "config.json").exists():
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        log(f"dequantising {res.gguf_file} once (later runs load {saved})")
        t0 = time.time()
        with _gguf_read_once():
            tok = AutoTokenizer.from_pretrained(str(res.path), gguf_file=res.gguf_file, **kw)
            model = AutoModelForCausalLM.from_pretrained(str(res.path), gguf_file=res.gguf_file, dtype=torch.float32,
                                                         **kw)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = saved.with_name(saved.name + f".tmp{os.getpid()}")
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        describe(tmp, f"{res.gguf_file} ({res.identity})")
        os.replace(tmp, saved) if not saved.exists() else None
        log(f"dequantised in {time.time() - t0:.1f}s")

    @property
    def model(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM
            t0 = time.time()
            self._model, info = AutoModelForCausalLM.from_pretrained(
                str(self._src), dtype=self.dtype, use_safetensors=True, output_loading_info=True, **self._kw)
            refuse_fresh_weights(info, self._src, "causal_lm")
            self._model.to(self.device).eval()
            mark_used(self._src)  # `recipe cache --models` keeps what runs still load
            self._on_load(time.time() - t0)
        return self._model

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def chat(self, user: str, system: str | None = None) -> str:
        """The prompt text for one user turn under the model's chat template (generation prompt added)."""
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return (f"{system}\n\n" if system else "") + f"{user}\n"

    def chat_turns(self, turns: list[dict]) -> str:
        """The prompt for the next assistant turn after `turns` (system, user, assistant, ...,
        user) under the model's chat template; `chat` for one turn."""
        msgs = [{"role": t["role"], "content": t["content"] or ""} for t in turns]
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in msgs) + "\n"

    def loglik_rows(self, rows: list[list[tuple[list[int], list[int]]]]) -> list[dict]:
        """Summed log-probability of each continuation given its prompt (token ids), for rows
        that each pack several (prompt, continuation) pairs into one sequence; results come
        row by row."""
        import torch
        seqs, spans = [], []  # per row: token lists; per pair: (row, start, end) of its continuation
        for r, row in enumerate(rows):
            seqs.append([])
            at = 0
            for p, c in row:
                c = c[: self.max_len - 1] if len(c) >= self.max_len else c
                p = p[-(self.max_len - len(c)):] if len(p) + len(c) > self.max_len else p
                # with no prompt the first continuation token has no context and is not scored
                spans.append((r, at + max(len(p), 1), at + len(p) + len(c)))
                seqs[-1].append(p + c)
                at += len(p) + len(c)
        with torch.inference_mode():
            ids, hidden = self._packed_hidden(seqs)
            # the vocabulary projection only at the positions that predict continuation
            # tokens: a full [batch, length, vocab] log-softmax would cost more memory
            # traffic than the transformer itself on a CPU
            rr, cols, tgts, owner = [], [], [], []
            for i, (r, a, b) in enumerate(spans):
                if b > a:
                    rr += [r] * (b - a)
                    cols += list(range(a - 1, b - 1))
                    tgts += ids[r, a:b].tolist()
                    owner += [i] * (b - a)
            out = [{"logprob": 0.0, "tokens": 0} for _ in spans]
            if rr:
                h = hidden[torch.tensor(rr), torch.tensor(cols)]
                head = self.model.get_output_embeddings()
                tg = torch.tensor(tgts, device=h.device)
                lp = []
                for j in range(0, len(tgts), 256):  # log p = logit - logsumexp, no full log-softmax
                    lg = head(h[j:j + 256])
                    lp.append(lg.gather(-1, tg[j:j + 256, None]).squeeze(-1).float() - torch.logsumexp(lg.float(), -1))
                lp = torch.cat(lp)
                sums = torch.zeros(len(spans), dtype=torch.float64).index_add_(0, torch.tensor(owner), lp.double().cpu())
                for i, (_, a, b) in enumerate(spans):
                    out[i] = {"logprob": float(sums[i]), "tokens": int(max(0, b - a))}
        return out

    def _packed_hidden(self, rows: list[list[list[int]]]):
        """(token ids, last decoder hidden states) for rows that each pack several token
        sequences: a block-diagonal causal mask and per-sequence positions keep sequences
        apart, so each gets the states it would get alone, without padding between them."""
        import torch
        lens = [sum(map(len, row)) for row in rows]
        L = max(max(lens), 1)
        ids = torch.full((len(rows), L), self.tok.pad_token_id, dtype=torch.long)
        pos = torch.zeros((len(rows), L), dtype=torch.long)
        seg = torch.full((len(rows), L), -1, dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for j, t in enumerate(row):
                ids[r, at:at + len(t)] = torch.tensor(t, dtype=torch.long)
                pos[r, at:at + len(t)] = torch.arange(len(t))
                seg[r, at:at + len(t)] = j
                at += len(t)
        causal = torch.ones(L, L, dtype=torch.bool).tril()
        allowed = (seg[:, :, None] == seg[:, None, :]) & causal & (seg[:, :, None] >= 0)
        allowed |= torch.eye(L, dtype=torch.bool)  # padding attends to itself: no empty softmax rows
        mask = allowed[:, None]
        if self.model.config._attn_implementation != "sdpa":  # eager attention adds the mask
            mask = torch.zeros(mask.shape, dtype=self.dtype).masked_fill(~mask, torch.finfo(self.dtype).min)
        return ids, self._hidden(ids.to(self.device), mask.to(self.device), pos.to(self.device))

    def _hidden(self, ids, mask, pos=None):
        """Last hidden states of the decoder (without the LM head)."""
        dec = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
        if dec is not None:
            return dec(input_ids=ids, attention_mask=mask, position_ids=pos).last_hidden_state
        return self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                          output_hidden_states=True).hidden_states[-1]

    def next_token_rows(self, rows: list[list[list[int]]], choice_ids: list[int]) -> list[list[float]]:
        """Probabilities of `choice_ids` as the token after each prompt, for rows that each
        pack several prompts into one sequence; the vocabulary projection runs only at each
        prompt's last position. Results come row by row."""
        import torch
        rows = [[p[-self.max_len:] or [self.tok.pad_token_id] for p in row] for row in rows]
        where = []
        for r, row in enumerate(rows):
            at = 0
            for p in row:
                at += len(p)
                where.append((r, at - 1))
        with torch.inference_mode():
            _, hidden = self._packed_hidden(rows)
            h = hidden[torch.tensor([r for r, _ in where]), torch.tensor([c for _, c in where])]
            logits = self.model.get_output_embeddings()(h)
            probs = torch.softmax(logits.float(), dim=-1)[:, choice_ids]
        return probs.cpu().tolist()

    def fp32_fits(self) -> bool:
        """Whether the model may run in float32 for generation: it does already, or its
        float32 weights take at most FP32_MAX_BYTES."""
        import torch
        if self.dtype == torch.float32:
            return True
        n = sum(p.numel() for p in self.model.parameters())
        return 4 * n <= FP32_MAX_BYTES

    @contextmanager
    def float32(self):
        """The model in float32 for the block, then back in its own dtype (bf16 -> fp32 -> bf16
        is exact, so later scores are unchanged)."""
        import torch
        if self.dtype == torch.float32:
            yield
            return
        self.model.to(torch.float32)
        try:
            yield
        finally:
            self.model.to(self.dtype)

    def generate_batch(self, prompts: list[str], max_new_tokens: int, temperature: float,
                       n: int, seeds: list[list[int]], stop: list[str] | None = None) -> list[list[tuple]]:
        """`n` completions of each prompt, each as (text, cut): cut when it ran to the token limit
        without ending its turn or writing a stop string. Greedy at temperature 0; else sampled, the j-th
        completion of prompt i from its own generator seeded `seeds[i][j]` (Gumbel-max: the
        argmax of logits / T plus that generator's Gumbel noise is a draw from the softmax), so
        the other prompts in the batch take none of its randomness (their shapes can still
        move its logits' rounding: `LocalLM.generate` says when that matters)."""
        import torch
        self.tok.padding_side = "left"
        # the prompt keeps at least half the context: a short-context model generates less
        room = max(self.max_len // 2, self.max_len - max_new_tokens)
        max_new_tokens = min(max_new_tokens, self.max_len - room)
        sampled = temperature > 0
        rows = [p for p in prompts for _ in range(n)] if sampled else prompts
        enc = self.tok(rows, return_tensors="pt", padding=True, add_special_tokens=False,
                       truncation=True, max_length=room)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        kw = dict(max_new_tokens=max_new_tokens, pad_token_id=self.tok.pad_token_id, do_sample=False)
        if stop:  # a row that writes one stops (and is padded) while the others go on
            from transformers import StoppingCriteriaList
            kw["stopping_criteria"] = StoppingCriteriaList([_StopStrings(self.tok, stop, enc["input_ids"].shape[1])])
        if sampled:
            from transformers import LogitsProcessorList
            kw["logits_processor"] = LogitsProcessorList([_GumbelSampler(temperature, [s for ss in seeds for s in ss])])
        # greedy: one completion per prompt, the same n times (transformers refuses n > 1)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kw)
        new = out[:, enc["input_ids"].shape[1]:]
        texts = self.tok.batch_decode(new, skip_special_tokens=True)
        # a row that ended its turn is padded to the batch's length: its last token is an end
        ended = self._end_ids()
        full = new.shape[1] >= max_new_tokens
        done = [(t, full and int(row[-1]) not in ended and not (stop and any(x in t for x in stop if x)))
                for t, row in zip(texts, new)]
        if not sampled:
            return [[d] * n for d in done]
        return [done[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _end_ids(self) -> set[int]:
        """Tokens that end generation (the generation config's, the tokenizer's) and padding."""
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids = set(eos if isinstance(eos, (list, tuple)) else [eos])
        ids |= {self.tok.eos_token_id, self.tok.pad_token_id}
        return {int(i) for i in ids if i is not None}


class _StopStrings:
    """Stops each row once its generated text holds one of the stop strings, looking at its last
    few tokens only (a stop string of c characters spans at most c tokens). transformers' own
    `stop_strings` reads the tokenizer's vocabulary in a way that fails for some tokenizers."""

    def __init__(self, tok, stop: list[str], start: int):
        self.tok, self.stop, self.start = tok, [x for x in stop if x], start
        self.tail = max(len(x) for x in self.stop) + 2

    def __call__(self, input_ids, scores, **kw):
        import torch
        new = input_ids[:, self.start:]
        texts = self.tok.batch_decode(new[:, -self.tail:], skip_special_tokens=True)
        return torch.tensor([any(x in t for x in self.stop) for t in texts], dtype=torch.bool, device=input_ids.device)


class _GumbelSampler:
    """A logits processor for sampling inside greedy decoding: each row adds Gumbel noise from
    its own generator to its logits / temperature, drawing one vocabulary-wide vector per
    step whether or not the row has finished, so a row's t-th token depends only on its seed."""

    def __init__(self, temperature: float, seeds: list[int]):
        import torch
        self.t = float(temperature)
        self.gens = [torch.Generator().manual_seed(int(s) % (1 << 63)) for s in seeds]

    def __call__(self, input_ids, scores):
        import torch
        u = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64) for g in self.gens])
        gumbel = -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))
        return scores.float() / self.t + gumbel.to(scores.device, torch.float32)


class Embedder:
    def __init__(self, res: Resolved, device: str):
        from sentence_transformers import SentenceTransformer
        if not (res.path / "modules.json").exists() and not (res.path / "config.json").exists():
            raise UserError(f"no sentence-transformers model at {res.path}")
        # safetensors only, as for the other kinds: no pickle is read from a recipe-named path
        self.model = SentenceTransformer(str(res.path), device=device, local_files_only=True,
                                         trust_remote_code=False, model_kwargs={"use_safetensors": True})

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def n_tokens(self, texts: list[str]) -> int:
        tok = self.model.tokenizer
        return int(sum(len(x) for x in tok(texts, add_special_tokens=True, truncation=True)["input_ids"]))


class Classifier:
    def __init__(self, res: Resolved, device: str, dtype: str | None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        if not (res.path / "config.json").exists():
            raise UserError(f"no classifier model at {res.path} (needs config.json)")
        kw = dict(local_files_only=True, trust_remote_code=False)
        self.device = device
        self.tok = AutoTokenizer.from_pretrained(str(res.path), **kw)
        self.model, info = AutoModelForSequenceClassification.from_pretrained(
            str(res.path), dtype=pick_dtype(device, dtype or "fp32"), use_safetensors=True, output_loading_info=True,
            **kw)
        refuse_fresh_weights(info, res.path, "classifier")
        self.model.to(device).eval()

    def classify_batch(self, items: list[tuple[str, str | None]]) -> list[list[float]]:
        import torch
        firsts = [a for a, _ in items]
        seconds = [b for _, b in items]
        enc = self.tok(firsts, seconds if any(s is not None for s in seconds) else None, padding=True,
                       truncation=True, max_length=512, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits.float()
        return logits.cpu().tolist()
