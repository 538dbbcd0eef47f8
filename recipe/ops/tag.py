"""tag: InsTag open-set tagging with an LM, or nearest tags from a vocabulary by embedding
similarity; then InsTag's normalisation. Adds a list column (default `tags`).

Normalisation (Lu et al. 2023, section 2), in order, each optional:
  1. lower-case and stem every word: "Creative Writing", "creative writings" -> "creative write"
  2. frequency filter: tags seen in fewer than `min_count` rows are dropped
  3. semantic merge: tags whose embeddings are within cosine `merge_similarity` are merged
     into the most frequent of them ("math problem", "mathematics problem" -> one tag)
  4. association merge: when `conf(A -> B) = rows(A and B) / rows(A) >= association`, A is
     seen in at least 3 rows (a rule needs support) and B is at least as frequent, A is
     replaced by B ("python", always with "coding" -> "coding")
Memory: the generated text and tags of one node.
"""
from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pyarrow as pa

from .base import Op, P
from ._common import row_texts

INSTAG_PROMPT = ('Please identify tags of user intentions in the following user query and provide an '
                 'explanation for each tag. Please respond in the JSON format {{"tag": str, "explanation": str}}.\n'
                 'User query: {query}')
ASSOCIATION_SUPPORT = 3  # rows a tag must appear in before a co-occurrence rule may merge it
_TAG_RE = re.compile(r'"tag"\s*:\s*"((?:[^"\\]|\\.)*)"', re.I)
_ITEM_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*\S")
_LINE_RE = re.compile(r"^\s*(?:[-*\d.)]+\s*)?(?:tag\s*:\s*)?([A-Za-z][\w \-/&]{1,40}?)\s*(?::|-|$)", re.I)


def parse_tags(text: str) -> list[str]:
    """Tags from an LM answer, tolerant of the malformed JSON small models write:
    JSON objects or lists, `"tag": "..."` fragments anywhere, else `- tag: explanation` lines."""
    out: list[str] = []
    try:
        doc = json.loads(text)
        items = doc if isinstance(doc, list) else [doc]
        out = [str(d["tag"]) for d in items if isinstance(d, dict) and isinstance(d.get("tag"), str)]
    except (ValueError, TypeError):
        pass
    if not out:
        out = [m.group(1) for m in _TAG_RE.finditer(text)]
    if not out and "{" not in text:
        lines = text.splitlines()
        # with a list in the answer, only its items are tags: "The tags for this query are:"
        # above it is a preamble (SmolLM2 wrote one to most answers, and it became a tag)
        listed = [line for line in lines if _ITEM_RE.match(line)]
        for line in listed or lines:
            m = _LINE_RE.match(line)
            if m and ":" in line and m.group(1).strip().lower() not in ("tag", "tags"):
                out.append(m.group(1))
    seen, clean = set(), []
    for t in out:
        t = " ".join(t.strip().split())
        if t and t.lower() not in seen and len(t) <= 60:
            seen.add(t.lower())
            clean.append(t)
    return clean


def stem_tag(tag: str) -> str:
    import snowballstemmer
    st = snowballstemmer.stemmer("english")
    return " ".join(st.stemWord(w) for w in re.findall(r"[a-z0-9]+", tag.lower()))


def normalise_tags(rows: list[list[str]], min_count: int = 1, stem: bool | None = True,
                   merge_embed=None, merge_similarity: float | None = None,
                   association: float | None = None) -> tuple[list[list[str]], dict]:
    """Apply the InsTag normalisation steps; returns (tags per row, statistics). `stem`:
    stem and lower-case (True), lower-case only (False), or keep each tag as it is (None:
    a given vocabulary's tags)."""
    if stem is not None:
        rows = [[stem_tag(t) if stem else t.lower().strip() for t in r] for r in rows]
    rows = [list(dict.fromkeys(t for t in r if t)) for r in rows]
    freq = Counter(t for r in rows for t in r)
    rows = [[t for t in r if freq[t] >= min_count] for r in rows]
    stats = {"raw_tags": len(freq)}
    if merge_embed is not None and merge_similarity is not None:
        from ..algorithms import semantic_clusters
        freq = Counter(t for r in rows for t in r)
        vocab = sorted(freq, key=lambda t: (-freq[t], t))
        if vocab:
            labels = semantic_clusters(merge_embed(vocab), merge_similarity)
            # labels are the smallest index in a cluster = the most frequent tag in it
            mapping = {t: vocab[labels[i]] for i, t in enumerate(vocab)}
            rows = [list(dict.fromkeys(mapping[t] for t in r)) for r in rows]
            stats["semantic_merged"] = sum(1 for t, m in mapping.items() if t != m)
    if association is not None:
        freq = Counter(t for r in rows for t in r)
        pair = Counter((a, b) for r in rows for a in r for b in r if a != b)
        mapping = {}
        for (a, b), n in sorted(pair.items()):
            if freq[a] >= ASSOCIATION_SUPPORT and n / freq[a] >= association and (freq[b], b) > (freq[a], a) \
                    and a not in mapping:
                mapping[a] = b
        def root(t):
            seen = set()
            while t in mapping and t not in seen:
                seen.add(t)
                t = mapping[t]
            return t
        rows = [list(dict.fromkeys(root(t) for t in r)) for r in rows]
        stats["association_merged"] = len(mapping)
    final = Counter(t for r in rows for t in r)
    stats.update({"distinct_tags": len(final), "mean_tags_per_row": round(float(np.mean([len(r) for r in rows])) if rows else 0.0, 4),
                  "top_tags": [[t, n] for t, n in final.most_common(20)]})
    return rows, stats


class Tag(Op):
    name = "tag"
    kind = "map"
    describes_text = True

    def kind_of(self, args):
        # counting or merging tags across rows needs them all
        return "global" if args.get("min_count", 1) > 1 or args.get("merge_model") or args.get("association") else "map"
    version = 1
    doc = "InsTag tagging: open-set with an LM (method=lm) or from a vocabulary (method=vocab), then normalised."
    params = (
        P("method", "str", default="lm", choices=("lm", "vocab")),
        P("model", "model", required=True, doc="causal_lm for method=lm, embedding for method=vocab"),
        P("column", "str", default="tags", doc="the new list column"),
        P("on", "column", default="instruction", doc="the text to tag"),
        P("vocab", "strs", doc="tag vocabulary (method=vocab)"),
        P("threshold", "float", default=0.35, min=-1.0, max=1.0, doc="vocab: minimum cosine"),
        P("top", "int", default=5, min=1, doc="vocab: at most this many tags per row"),
        P("max_new_tokens", "int", default=96, min=8, max=1024),
        P("on_unparsed", "str", default="empty", choices=("empty", "set_aside"),
          doc="rows whose LM answer has no parseable tag: tag empty, or set aside"),
        P("stem", "bool", doc="lower-case and stem the tags (default: yes for method=lm; a vocabulary's "
                              "tags are kept as written unless stem is given)"),
        P("min_count", "int", default=1, min=1, doc="drop tags seen in fewer rows"),
        P("merge_model", "model", doc="embedding model for the semantic merge"),
        P("merge_similarity", "float", min=0.0, max=1.0, doc="semantic merge at this cosine (paper: ~0.95)"),
        P("association", "float", min=0.0, max=1.0, doc="association merge at this confidence"),
    )

    def adds(self, args):
        return [args.get("column", "tags")]

    def reads(self, args):
        return [] if args.get("on", "instruction") == "conversation" else [args.get("on", "instruction")]

    def types(self, args):
        return {args.get("column", "tags"): "list"}

    def model_kinds(self, args):
        return {"model": ("embedding",) if args.get("method") == "vocab" else ("causal_lm",),
                "merge_model": ("embedding",)}

    def model_calls(self, args):
        return {"model": ("embed",) if args.get("method") == "vocab" else ("generate",), "merge_model": ("embed",)}

    def models(self, args):
        return [m for m in (args.get("model"), args.get("merge_model")) if m]

    def check(self, args):
        if args.get("method") == "vocab" and not args.get("vocab"):
            return [("method", "tag(method=vocab) needs `vocab=[...]`")]
        seen: dict[str, str] = {}
        for t in args.get("vocab") or []:  # "Math" and "math" would split one tag's rows in two
            if t.strip().lower() in seen:
                return [("vocab", f"`vocab` lists one tag twice: {seen[t.strip().lower()]!r} and {t!r}")]
            seen[t.strip().lower()] = t
        if args.get("merge_similarity") is not None and not args.get("merge_model"):
            return [("merge_similarity", "the semantic merge needs `merge_model=<embedding model>`")]
        return []

    def run(self, ctx, args, inputs):
        src = inputs[0]
        texts = row_texts(ctx, src, args.get("on", "instruction"))
        rt, model = ctx.runtime, ctx.models[args["model"]]
        unparsed: set[int] = set()
        best = None  # vocab: each row's highest cosine to a tag
        if args.get("method", "lm") == "vocab":
            vocab = list(args["vocab"])
            ev = rt.embed(model, vocab)
            et = rt.embed(model, texts, progress=ctx.progress)
            sims = et @ ev.T
            top = args.get("top", 5)
            raw = []
            for s in sims:
                order = np.lexsort((np.arange(len(vocab)), -s))[:top]
                raw.append([vocab[j] for j in order if s[j] >= args.get("threshold", 0.35)])
            best = sims.max(axis=1) if len(vocab) else np.zeros(len(texts))
        else:
            prompts = [rt.chat_prompt(model, INSTAG_PROMPT.format(query=t)) for t in texts]
            answers = rt.generate(model, prompts, max_new_tokens=args.get("max_new_tokens", 96), progress=ctx.progress)
            raw = [parse_tags(a[0]) for a in answers]
            unparsed = {i for i, r in enumerate(raw) if not r}
        merge = None
        if args.get("merge_model"):
            mm = ctx.models[args["merge_model"]]
            merge = lambda tags: rt.embed(mm, tags)
        stem = args.get("stem")
        if stem is None:  # the LM's free text is normalised; a vocabulary is the user's own spelling
            stem = None if args.get("method") == "vocab" else True
        tags, stats = normalise_tags(raw, args.get("min_count", 1), stem, merge,
                                     args.get("merge_similarity"), args.get("association"))
        stats["unparsed_rows"] = len(unparsed)
        ctx.info.update(stats)
        _warn_untagged(ctx, args, tags, best, len(unparsed))
        col = args.get("column", "tags")
        drop = ({i: "tag: the model's answer had no parseable tag" for i in sorted(unparsed)}
                if args.get("on_unparsed") == "set_aside" else None)
        ctx.out.add_columns(src, pa.table({col: pa.array(tags, pa.list_(pa.string()))}), drop=drop)


def _warn_untagged(ctx, args: dict, tags: list, best, unparsed: int) -> None:
    """A warning when most rows got no tag: a vocabulary tagging at a threshold the texts
    never reach (or an LM whose answers did not parse) tags almost nothing, and what follows
    (a quota by tags, complexity by tag count) then works on empty lists."""
    n = len(tags)
    empty = sum(1 for t in tags if not t)
    if not n or empty * 2 <= n:
        return
    if best is not None:
        ctx.warn(f"{empty} of {n} rows got no tag: their texts' best cosine to the vocabulary is below "
                 f"threshold={args.get('threshold', 0.35)} (the median row's best: {float(np.median(best)):.3f}); "
                 f"lower `threshold` or add tags nearer the texts")
    else:
        ctx.warn(f"{empty} of {n} rows got no tag ({unparsed} of the model's answers had no parseable tag"
                 + (f"; min_count={args['min_count']} dropped the rest" if args.get("min_count", 1) > 1 else "") + ")")


OP = Tag()
