"""Fine-tuning a causal LM on a node's rows: the `finetune` model source.

Each row is the base model's chat template around the instruction, then the response and
the end-of-sequence token; only the response tokens carry the loss. Rows are packed into
sequences of up to `max_tokens` tokens (first fit in row order; attention is not masked
between rows packed together, as in TRL's plain packing). transformers' Trainer trains;
with `lora=true`, peft's LoRA adapters on every linear layer, merged into the weights after
training, so the result loads like any model. The device is picked as elsewhere (a GPU
when present, bf16 where supported). The weights are saved as safetensors under the model
cache, keyed by the training step's fingerprint (base identity, training rows, settings,
library versions): a key already there is reused, never trained again.
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

from .weights_store import describe, made_from

DEFAULTS = {"epochs": 1, "lr": 2e-4, "lora": True, "max_tokens": 256, "seed": 0, "batch_rows": 4}
# what the fingerprint must see besides the settings: a new library may train differently
LIBRARIES = ("torch", "transformers", "peft", "accelerate")


def library_versions() -> dict:
    from ..codehash import package_versions
    return dict(package_versions(*LIBRARIES))


def weights_path(weights_dir: Path, key: str) -> Path:
    return Path(weights_dir) / "finetuned" / key[:32]


def examples(tok, chat, prompts: list[str], responses: list[str], max_tokens: int) -> list[tuple[list, list]]:
    """(input ids, labels) per row: the prompt's labels are -100, the response's its ids."""
    out = []
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    for p, r in zip(prompts, responses):
        a = tok(chat(p), add_special_tokens=False)["input_ids"]
        b = tok(r, add_special_tokens=False)["input_ids"] + eos
        ids = (a + b)[:max_tokens]
        labels = ([-100] * len(a) + b)[:max_tokens]
        if any(x != -100 for x in labels):
            out.append((ids, labels))
    return out


def pack(rows: list[tuple[list, list]], max_tokens: int) -> list[tuple[list, list]]:
    """Rows concatenated in order into sequences of at most `max_tokens` tokens."""
    packed, ids, labels = [], [], []
    for a, b in rows:
        if ids and len(ids) + len(a) > max_tokens:
            packed.append((ids, labels))
            ids, labels = [], []
        ids, labels = ids + a, labels + b
    if ids:
        packed.append((ids, labels))
    return packed


def _collate(pad_id: int):
    import torch

    def collate(batch):
        n = max(len(x["input_ids"]) for x in batch)
        ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), n), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for i, x in enumerate(batch):
            k = len(x["input_ids"])
            ids[i, :k] = torch.tensor(x["input_ids"])
            labels[i, :k] = torch.tensor(x["labels"])
            mask[i, :k] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
    return collate


def mean_loss(model, seqs: list[tuple[list, list]], device: str) -> float:
    """Mean loss per response token over the sequences (no gradient)."""
    import torch
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for ids, labels in seqs:
            x = torch.tensor([ids], device=device)
            y = torch.tensor([labels], device=device)
            logits = model(input_ids=x).logits[0, :-1].float()
            tgt = y[0, 1:]
            keep = tgt != -100
            if keep.any():
                total += float(torch.nn.functional.cross_entropy(logits[keep], tgt[keep], reduction="sum"))
                count += int(keep.sum())
    return total / max(count, 1)


def _steps_callback(progress):
    """A Trainer callback telling `progress(done, total)` after each optimiser step (a CPU
    training runs for minutes; the run's progress bar or log lines say how far it is)."""
    from transformers import TrainerCallback

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            progress(state.global_step, state.max_steps)
    return Steps()


def finetune(src_dir: Path, tok, chat, prompts: list[str], responses: list[str], settings: dict, out: Path,
             device: str, log=lambda *_: None, progress=None) -> dict:
    """Train a copy of the model at `src_dir` and save it to `out`; returns what happened.
    `progress(done, total)`: after each optimiser step."""
    import torch
    from .hf import refuse_fresh_weights
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments
    s = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    torch.manual_seed(int(s["seed"]))
    seqs = pack(examples(tok, chat, prompts, responses, int(s["max_tokens"])), int(s["max_tokens"]))
    if not seqs:
        raise ValueError("finetune: no training row has a response to learn")
    cuda = device.startswith("cuda")
    bf16 = cuda and torch.cuda.is_bf16_supported()
    model, info = AutoModelForCausalLM.from_pretrained(str(src_dir), dtype=torch.bfloat16 if bf16 else torch.float32,
                                                       local_files_only=True, use_safetensors=True,
                                                       trust_remote_code=False, output_loading_info=True)
    refuse_fresh_weights(info, src_dir, "causal_lm")
    model.to(device)
    before = mean_loss(model, seqs, device)
    if s["lora"]:
        from peft import LoraConfig, get_peft_model
        with warnings.catch_warnings():  # peft reads a property transformers 5 deprecates: not the user's to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                     target_modules="all-linear", task_type="CAUSAL_LM"))
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    args = TrainingArguments(output_dir=str(tmp / "trainer"), per_device_train_batch_size=int(s["batch_rows"]),
                             num_train_epochs=float(s["epochs"]), learning_rate=float(s["lr"]),
                             seed=int(s["seed"]), data_seed=int(s["seed"]), save_strategy="no", report_to=[],
                             logging_strategy="no", disable_tqdm=True, use_cpu=not cuda, bf16=bf16,
                             dataloader_num_workers=0, lr_scheduler_type="linear", warmup_steps=0)
    data = [{"input_ids": a, "labels": b} for a, b in seqs]
    t0 = time.time()
    log(f"fine-tuning on {len(prompts)} rows ({len(seqs)} packed sequences, {sum(len(a) for a, _ in seqs)} tokens)")
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      data_collator=_collate(tok.pad_token_id if tok.pad_token_id is not None else 0))
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict to stdout; `log` reports instead
    if progress is not None:
        trainer.add_callback(_steps_callback(progress))
    trainer.train()
    secs = time.time() - t0
    log(f"fine-tuned in {secs:.1f} s")
    if s["lora"]:
        model = model.merge_and_unload()
    after = mean_loss(model, seqs, device)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    describe(tmp, f"{made_from(src_dir)} fine-tuned on {len(prompts)} rows (" +
             ", ".join(f"{k}={s[k]}" for k in sorted(s)) + ")")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():  # another run with the same key finished first: its weights are these
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, out)
    tokens = sum(sum(1 for x in b if x != -100) for _, b in seqs)
    return {"rows": len(prompts), "sequences": len(seqs), "response_tokens": tokens,
            "loss_before": round(before, 6), "loss_after": round(after, 6), "seconds": round(secs, 3),
            "tokens_per_second": round(sum(len(a) for a, _ in seqs) * float(s["epochs"]) / max(secs, 1e-9), 1)}
