"""Data-Juicer's MinHash deduplicator (`document_minhash_deduplicator`, its single-machine
operator: hashes computed by a `datasets` map over worker processes, then LSH buckets and
union-find) on a JSON-lines file, run by bench/scale.py in Data-Juicer's own virtual
environment.

    python _datajuicer_minhash.py ROWS_JSONL OUT_JSONL TEXT_KEY PROCS THRESHOLD

Word 5-grams (`tokenization="space"`, as `unit="word"`), 256 permutations, bands and rows
from the threshold by Data-Juicer's own `optimal_param`. Prints the rows kept as `KEPT n`.
"""
import json
import os
import sys

# this folder holds bench/ray.py, which would shadow the `ray` package Data-Juicer imports
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from datasets import load_dataset  # noqa: E402

from data_juicer.core.data import NestedDataset  # noqa: E402
from data_juicer.ops.deduplicator.document_minhash_deduplicator import DocumentMinhashDeduplicator  # noqa: E402


def main() -> None:
    rows, out, key, procs, threshold = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    ds = NestedDataset(load_dataset("json", data_files=rows, split="train"))
    op = DocumentMinhashDeduplicator(tokenization="space", window_size=5, lowercase=True, num_permutations=256,
                                     jaccard_threshold=threshold, text_key=key, num_proc=procs)
    kept = op.run(ds)
    with open(out, "w", encoding="utf-8") as fh:
        for t in kept[key]:
            fh.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    print(f"KEPT {len(kept)}")


if __name__ == "__main__":
    main()
