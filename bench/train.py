"""Training throughput: `recipe`'s finetune (recipe/runtime/train.py: packed rows, loss on the
response tokens) against a plain transformers Trainer loop on the same model, rows, settings
and device, each in its own process, same run:

    python bench/train.py [--rows 64] [--max-tokens 256] [--lora | --full]

The baseline is the usual Trainer recipe: each row its own sequence (chat template, response
tokens in the loss), padded per batch of 4 rows. Both train one epoch at lr 2e-4. Printed:
seconds of training, tokens per second (real tokens: prompt and response, no padding, over
the training time) and the ratio (goal: at least 1x the baseline).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402


def _rows(n: int):
    from _data import alpaca_like
    return [(r["instruction"] + ("\n\n" + r["input"] if r.get("input") else ""), r["output"]) for r in alpaca_like(n)]


def _base():
    from recipe.runtime import ModelRuntime
    from recipe.runtime.resolve import identity
    rt = ModelRuntime()
    decl = {"kind": "causal_lm", "source": "builtin:smollm2", "options": {}, "identity": identity("causal_lm", "builtin:smollm2", {})}
    return rt, rt.model(decl).m  # the transformers model behind the local backend


def ours(rows: int, max_tokens: int, lora: bool, out: str) -> dict:
    import shutil
    from recipe.runtime.train import finetune
    rt, m = _base()
    pairs = _rows(rows)
    shutil.rmtree(out, ignore_errors=True)
    info = finetune(m._src, m.tok, m.chat, [a for a, _ in pairs], [b for _, b in pairs],
                    {"epochs": 1, "lr": 2e-4, "lora": lora, "max_tokens": max_tokens, "batch_rows": 4}, Path(out), rt.device)
    tokens = sum(len(m.tok(m.chat(a), add_special_tokens=False)["input_ids"]) +
                 len(m.tok(b, add_special_tokens=False)["input_ids"]) + 1 for a, b in pairs)
    tokens = min(tokens, info["sequences"] * max_tokens)  # rows are cut at max_tokens
    return {"seconds": info["seconds"], "sequences": info["sequences"], "tokens": tokens,
            "loss_before": info["loss_before"], "loss_after": info["loss_after"]}


def baseline(rows: int, max_tokens: int, lora: bool, out: str) -> dict:
    """A plain Trainer loop: one padded sequence per row."""
    import time
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments
    from recipe.runtime.train import _collate, examples
    rt, m = _base()
    pairs = _rows(rows)
    seqs = examples(m.tok, m.chat, [a for a, _ in pairs], [b for _, b in pairs], max_tokens)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(m._src), dtype=torch.float32, local_files_only=True)
    if lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
    args = TrainingArguments(output_dir=out, per_device_train_batch_size=4, num_train_epochs=1, learning_rate=2e-4,
                             seed=0, save_strategy="no", report_to=[], logging_strategy="no", disable_tqdm=True,
                             use_cpu=True, dataloader_num_workers=0)
    t = time.time()
    Trainer(model=model, args=args, train_dataset=[{"input_ids": a, "labels": b} for a, b in seqs],
            data_collator=_collate(m.tok.pad_token_id)).train()
    return {"seconds": time.time() - t, "sequences": len(seqs), "tokens": sum(len(a) for a, _ in seqs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--full", action="store_true", help="train every weight (default: LoRA)")
    a = ap.parse_args()
    kw = {"rows": a.rows, "max_tokens": a.max_tokens, "lora": not a.full}
    base = measure("train", "baseline", **kw, out="/tmp/bench-train-base")["result"]
    mine = measure("train", "ours", **kw, out="/tmp/bench-train-ours")["result"]
    for name, r in (("transformers Trainer, one row per sequence", base), ("recipe finetune (packed)", mine)):
        print(f"{name:45s} {r['seconds']:7.1f} s  {r['sequences']:4d} sequences  {r['tokens'] / r['seconds']:8.1f} tokens/s")
    ratio = (mine["tokens"] / mine["seconds"]) / (base["tokens"] / base["seconds"])
    print(f"throughput ratio: {ratio:.2f}x the plain Trainer loop (goal >= 1x: {'met' if ratio >= 1 else 'not met'}); "
          f"loss on the training rows {mine['loss_before']:.3f} -> {mine['loss_after']:.3f}")
    print(json.dumps({"baseline": base, "ours": mine, "ratio": ratio}))


if __name__ == "__main__":
    main()
