"""Write the embedded default data set (examples/data/default.jsonl): instruction/response
pairs generated from templates by this script, so no third-party rows live in the repo.

It is built to exercise curation: exact and near duplicates, very short and empty answers,
several task families, and a few malformed lines that the reader must set aside.
Run: python examples/make_default_data.py
"""
from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS = ["photosynthesis", "the water cycle", "binary search", "compound interest", "the French Revolution",
          "neural networks", "volcanoes", "supply and demand", "the immune system", "recursion",
          "climate change", "the Pythagorean theorem", "hash tables", "plate tectonics", "inflation",
          "the printing press", "black holes", "sorting algorithms", "the Roman Empire", "vaccines"]
FAMILIES = [
    ("Explain {t} to a ten-year-old.", "{T} is easiest to picture with an everyday example. Imagine {ex}. "
     "In the same way, {t} works step by step: first {a}, then {b}, and finally {c}."),
    ("Write three quiz questions about {t}.", "1. What is the main idea behind {t}?\n2. Give one real-world "
     "example of {t}.\n3. Why does {t} matter for {a}?"),
    ("Summarise {t} in one sentence.", "{T} is, in short, the way {a} leads to {b}."),
    ("List the key facts about {t}.", "- It involves {a}.\n- It depends on {b}.\n- It is often linked to {c}."),
    ("Compare {t} with {u}.", "Both {t} and {u} involve {a}, but {t} focuses on {b} while {u} focuses on {c}."),
]
CODE = [
    ("Write a Python function that returns the {n}th Fibonacci number.",
     "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a"),
    ("Write a Python function that reverses a string.", "def reverse(s):\n    return s[::-1]"),
    ("Write a SQL query that counts rows per {col} in a table called events.",
     "SELECT {col}, COUNT(*) AS n FROM events GROUP BY {col} ORDER BY n DESC;"),
]
WORDS = ["energy", "structure", "change", "balance", "growth", "memory", "feedback", "pressure", "order"]


def build(n: int = 240, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    lines: list[str] = []
    for i in range(n):
        if i % 6 == 5:
            inst, out = rng.choice(CODE)
            inst = inst.format(n=rng.randint(5, 40), col=rng.choice(["user_id", "country", "day"]))
            out = out.format(col=rng.choice(["user_id", "country", "day"]))
            rec = {"instruction": inst, "input": "", "output": out}
        else:
            t, u = rng.sample(TOPICS, 2)
            tmpl_i, tmpl_o = rng.choice(FAMILIES)
            a, b, c = rng.sample(WORDS, 3)
            fill = dict(t=t, T=t[0].upper() + t[1:], u=u, a=a, b=b, c=c,
                        ex=f"a jar of {rng.choice(['marbles', 'water', 'sand', 'coins'])}")
            rec = {"instruction": tmpl_i.format(**fill), "input": "", "output": tmpl_o.format(**fill)}
        if i % 17 == 3:
            rec["output"] = "Yes."  # low-effort answers for quality scoring to find
        lines.append(json.dumps(rec))
        if i % 23 == 11:
            lines.append(json.dumps(rec))  # exact duplicate
    lines.insert(40, '{"instruction": "Broken record", "output": ')   # malformed JSON
    lines.insert(90, json.dumps({"instruction": "", "input": "", "output": "nothing asked"}))  # empty instruction
    lines.insert(130, json.dumps({"instruction": 42, "input": "", "output": "wrong type"}))  # wrongly typed
    return lines


def build_eval() -> list[str]:
    """A small 'benchmark' for the decontamination example: some of its questions also
    occur in the default data (with other whitespace and case), the rest do not."""
    qs = ["Explain photosynthesis to a ten-year-old.", "summarise  the water cycle in one sentence.",
          "Write a Python function that reverses a string.", "What is the boiling point of water on Everest?",
          "Name three prime numbers larger than 100.", "Compare volcanoes with black holes."]
    return [json.dumps({"question_id": i, "turns": [q]}) for i, q in enumerate(qs)]


if __name__ == "__main__":
    data = Path(__file__).with_name("data")
    (data / "default.jsonl").write_text("\n".join(build()) + "\n", encoding="utf-8")
    (data / "eval.jsonl").write_text("\n".join(build_eval()) + "\n", encoding="utf-8")
    print(f"wrote {data}/default.jsonl and {data}/eval.jsonl")
