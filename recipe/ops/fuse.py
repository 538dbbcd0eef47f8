"""fuse: create new instructions with an LM.

`expand` (LIFT, Xu et al. 2023): rewrite an instruction into a more demanding one (one of
LIFT's four expansion moves, picked per row by seed), then answer it. `pair`: fuse a row
with its nearest neighbour (embedding) into one instruction that needs both, then answer.
New rows carry `_parents` and count as `rows_created`; unusable generations (empty,
unchanged, truncated, not parseable) are set aside with the reason. Input rows are kept.
Memory: the rows of one node plus the generated text.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa

from .base import Op, P
from ._common import fetch_rows, set_aside, with_turn, write_rows

EXPAND_MOVES = {
    "constraints": "adding one or two concrete constraints or requirements",
    "deepen": "asking for deeper reasoning or more detailed analysis",
    "broaden": "broadening it to a wider or related topic",
    "concretise": "replacing general concepts with more specific ones",
}
EXPAND_PROMPT = ("Rewrite the instruction below into a more demanding version by {move}. "
                 "Reply with only the new instruction.\n\nInstruction: {instruction}")
PAIR_PROMPT = ("Combine the two instructions below into a single new instruction that needs both to be answered. "
               "Reply with only the new instruction.\n\nInstruction 1: {a}\n\nInstruction 2: {b}")
_PREFIX = re.compile(r"^\s*(new|rewritten|combined|fused)?\s*instruction\s*\d*\s*:\s*", re.I)
PARENTS = pa.field("_parents", pa.list_(pa.string()))


def clean_instruction(text: str) -> str:
    t = _PREFIX.sub("", text.strip()).strip().strip('"').strip()
    return t


def _norm(t: str) -> str:
    return " ".join(t.lower().split()).rstrip(".?!")


class Fuse(Op):
    name = "fuse"
    kind = "map"

    def kind_of(self, args):
        return "global" if args.get("method") == "pair" else "map"  # pairs need every row's embedding
    version = 1
    doc = "Create harder instructions with an LM (LIFT expansion) or fuse neighbouring pairs; new rows keep _parents."
    creates_rows = True
    params = (
        P("method", "str", default="expand", choices=("expand", "pair")),
        P("model", "model", required=True, doc="the LM that writes and answers"),
        P("embedding", "model", doc="pair: the embedding model that finds neighbours"),
        P("rounds", "int", default=1, min=1, max=5, doc="expand the previous round's new rows again"),
        P("max_new", "int", min=0, doc="cap on rows created"),
        P("max_new_tokens", "int", default=128, min=8, doc="per generated instruction or answer"),
        P("temperature", "float", default=0.0, min=0.0, max=2.0),
        P("seed", "int", default=0),
    )

    def models(self, args):
        return [m for m in (args.get("model"), args.get("embedding")) if m]

    def adds(self, args):
        return ["_parents"]

    def types(self, args):
        return {"_parents": "list"}

    def model_kinds(self, args):
        return {"model": ("causal_lm",), "embedding": ("embedding",)}

    def model_calls(self, args):
        return {"model": ("generate",), "embedding": ("embed",)}

    def check(self, args):
        if args.get("method") == "pair" and not args.get("embedding"):
            return [("method", "fuse(method=pair) needs `embedding=<model>`")]
        return []

    def run(self, ctx, args, inputs):
        rt, model = ctx.runtime, ctx.models[args["model"]]
        rows, schema = fetch_rows(ctx, inputs[0])
        seed, mnt = args.get("seed", 0), args.get("max_new_tokens", 128)
        cap = args.get("max_new")
        created: list[dict] = []
        aside: list[tuple[str, str]] = []
        frontier = rows
        for rnd in range(1, args.get("rounds", 1) + 1):
            if cap is not None:
                frontier = frontier[: max(0, cap - len(created) - len(aside))]
            if not frontier:
                break
            if args.get("method", "expand") == "pair":
                jobs = self._pairs(ctx, args, frontier, rnd)
            else:
                jobs = []
                for r in frontier:
                    move = sorted(EXPAND_MOVES)[int(hashlib.sha256(f"{seed}:{r['_id']}".encode()).hexdigest(), 16) % 4]
                    jobs.append((f"{r['_id']}+expand{rnd}", [r["_id"]], r["instruction"],
                                 EXPAND_PROMPT.format(move=EXPAND_MOVES[move], instruction=r["instruction"])))
            prompts = [rt.chat_prompt(model, p) for _, _, _, p in jobs]
            new_inst = [g[0] for g in rt.generate(model, prompts, max_new_tokens=mnt,
                                                  temperature=args.get("temperature", 0.0), seed=seed + rnd,
                                                  progress=ctx.progress, ends=True)]
            ok_jobs = []
            for (nid, parents, old, _), (text, cut) in zip(jobs, new_inst):
                inst = clean_instruction(text)
                why = None
                if not inst:
                    why = "fuse: the model wrote an empty instruction"
                elif _norm(inst) == _norm(old):
                    why = "fuse: the new instruction is the original unchanged"
                elif cut:
                    why = f"fuse: instruction truncated at {mnt} tokens"
                elif len(inst.split()) < 3:
                    why = "fuse: the new instruction is not parseable as an instruction"
                if why:
                    aside.append((nid, why))
                else:
                    ok_jobs.append((nid, parents, inst))
            answers = rt.generate(model, [rt.chat_prompt(model, i) for _, _, i in ok_jobs], max_new_tokens=mnt,
                                  temperature=args.get("temperature", 0.0), seed=seed + 100 + rnd,
                                  progress=ctx.progress, ends=True)
            fresh = []
            for (nid, parents, inst), ((text, cut),) in zip(ok_jobs, answers):
                a = text.strip()
                if not a:
                    aside.append((nid, "fuse: the model wrote an empty answer"))
                elif cut:
                    aside.append((nid, f"fuse: answer truncated at {mnt} tokens"))
                else:
                    base = {k: None for k in schema.names}
                    fresh.append(with_turn({**base, "_id": nid, "_parents": parents}, inst, a))
            created += fresh
            frontier = fresh
        write_rows(ctx, rows + created, schema, [PARENTS])
        set_aside(ctx, aside)
        ctx.info.update({"created": len(created), "unusable": len(aside)})

    def _pairs(self, ctx, args, frontier, rnd):
        """Jobs fusing each frontier row with its nearest unpaired frontier row: round 1 pairs
        the input rows, later rounds the rows the round before created."""
        from ..algorithms.pairs import pair_up
        e = ctx.runtime.embed(ctx.models[args["embedding"]], [r["instruction"] for r in frontier],
                              progress=ctx.progress)
        rng = np.random.Generator(np.random.PCG64(args.get("seed", 0) + rnd))
        jobs = []
        for i, j in pair_up(np.asarray(e), rng):
            a, b = frontier[i], frontier[j]
            jobs.append((f"{a['_id']}+{b['_id']}+pair{rnd}", [a["_id"], b["_id"]], a["instruction"],
                         PAIR_PROMPT.format(a=a["instruction"], b=b["instruction"])))
        return jobs


OP = Fuse()
