"""datatrove's MinHash deduplication (its four-stage example pipeline, local executor) on a
JSON-lines file, run by bench/scale.py in datatrove's own virtual environment.

    python _datatrove_minhash.py SHARD_DIR WORKDIR TEXT_KEY TASKS

SHARD_DIR holds the rows as `*.jsonl` shards, one per task (datatrove splits work by file).

Words are split on whitespace (datatrove's English tokenizer needs NLTK data downloaded at
run time; whitespace keeps the comparison offline and matches `unit="word"`). Prints the
rows kept as `KEPT n`.
"""
import sys

from datatrove.executor.local import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer


class Whitespace(WordTokenizer):
    def word_tokenize(self, text):
        return text.split()

    def sent_tokenize(self, text):
        return [text]

    def span_tokenize(self, text):
        return [(0, len(text))]


def main():
    src, work, key, tasks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    # 14 buckets x 8 hashes is datatrove's default; its S-curve crosses 0.5 near Jaccard 0.72
    config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    tok = Whitespace()
    reader = lambda: JsonlReader(src, text_key=key, id_key="_id", glob_pattern="*.jsonl")  # noqa: E731
    s1 = LocalPipelineExecutor(pipeline=[reader(), MinhashDedupSignature(f"{work}/sigs", config=config, language=tok)],
                               tasks=tasks, workers=tasks, logging_dir=f"{work}/logs/1")
    s2 = LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=config)],
                               tasks=config.num_buckets, workers=tasks, logging_dir=f"{work}/logs/2", depends=s1)
    s3 = LocalPipelineExecutor(pipeline=[MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=config)],
                               tasks=1, logging_dir=f"{work}/logs/3", depends=s2)
    s4 = LocalPipelineExecutor(pipeline=[reader(), MinhashDedupFilter(f"{work}/remove"),
                                         JsonlWriter(f"{work}/out", output_filename="${rank}.jsonl", compression=None)],
                               tasks=tasks, workers=tasks, logging_dir=f"{work}/logs/4", depends=s3)
    s4.run()
    import glob
    kept = sum(sum(1 for _ in open(f)) for f in glob.glob(f"{work}/out/*.jsonl"))
    print("KEPT", kept)


if __name__ == "__main__":
    main()
