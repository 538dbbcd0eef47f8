"""Compile the compiled loops (`recipe.compiled`) ahead of the first run, by running a small
recipe that takes every path that uses them (ASCII and other text, characters and words):
their signatures are then the ones runs use.
`make setup` runs `python -m recipe.warm`."""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from .api import load
from .compiled import missing
from .io.arrow_array import count_elements

WARM = '''recipe warm
source raw = read("{data}")
source arr = read("{array}")
kept = raw
  | filter(word_repetition(response, 3) < 0.9)
  | dedupe(method="exact", on=instruction)
  | dedupe(method="minhash", on=instruction, threshold=0.8)
  | dedupe(method="minhash", on=response, threshold=0.8)
  | dedupe(method="minhash", on=instruction, unit="word", threshold=0.8)
write kept to "kept.jsonl"
write arr to "arr.jsonl"
'''


def warm(log=print) -> float:
    """Compile every loop by running `WARM` on a few generated rows; the seconds it took."""
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="recipe-warm-") as d:
        rows = [{"instruction": f"Write sentence number {i} about the sea and the sky.",
                 "input": "", "output": f"The sea {i} meets the sky {i} at the far horizon line, où le ciel est bleu."} for i in range(40)]
        Path(d, "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        Path(d, "a.json").write_text(json.dumps(rows, indent=1))
        Path(d, "w.recipe").write_text(WARM.format(data=Path(d, "d.jsonl"), array=Path(d, "a.json")))
        load(str(Path(d, "w.recipe"))).run(out=Path(d, "o"), cache_dir=Path(d, "c"))
        count_elements(Path(d, "a.json"))  # what `recipe plan` estimates an array's rows with
    left = missing()
    if left:
        log(f"not compiled by the warm-up recipe: {', '.join(left)}")
    return time.time() - t0


if __name__ == "__main__":
    before = len(missing())
    secs = warm()
    print(f"compiled loops: {before} compiled now, {len(missing())} left ({secs:.1f}s)", file=sys.stderr)
