"""Real instruction data from ../shared/datasets for benchmarks (never copied into the repo)."""
from __future__ import annotations

import json
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def alpaca_like(n: int, root: Path = DATASETS) -> list[dict]:
    """Up to n rows of code_alpaca + GSM8K-in-alpaca + cherry alpaca, in a fixed order."""
    rows: list[dict] = []
    for f in ("code_alpaca/code_alpaca_2k.json", "cherry_llm/cherry_alpaca_5_percent.json",
              "alpaca_data_cleaned_repo/gsm_8k_train.json", "code_alpaca/new_codealpaca.json"):
        p = root / f
        if p.exists():
            rows += [r for r in json.loads(p.read_text()) if isinstance(r, dict) and r.get("instruction")]
        if len(rows) >= n:
            break
    if not rows:
        raise SystemExit(f"no data under {root}; pass --datasets PATH")
    return rows[:n]


def p3_texts(root: Path = DATASETS, limit: int | None = None) -> list[str]:
    out = []
    for f in sorted((root / "p3_t0_train_50k").glob("*.jsonl")):
        for line in f.open():
            r = json.loads(line)
            out.append(r["prompt"] + " " + r.get("completion", ""))
    return out[:limit] if limit else out


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
