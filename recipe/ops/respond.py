"""respond: answer each row's last user turn with an LM, as distilabel's `TextGeneration` and
FastChat's `gen_model_answer` do: instruction-only rows (an evaluation set's questions, a prompt
list, a self-instruct pool) get answers, and with `replace=true` every row's final answer is
written again by the model (distillation from a stronger one); with `all_turns=true` too, every
assistant turn of a conversation is, in order, each prompt holding the new answers before it
(as regenerating ShareGPT's answers with a stronger model does).

The prompt is the conversation up to the turn answered, under the model's chat template (an
endpoint without a local tokenizer gets the turns and applies its own), with `system` first when
the row has no system turn of its own. With `turns=<column>` (a list of user turns, as MT-Bench's
`turns`), the conversation is built from those turns, each answered in order: round k asks the
k-th turn of every row that has one, with the answers of the rounds before in its prompt.

With `candidates=n` (sampled: `temperature` above 0) each turn gets n answers, and `pick`, a
reward or classifier model, scores each usable one as the answer to its turn; the best is kept
(rejection sampling, as Llama 2's and RAFT's data were made) and its reward is `answer_reward`.

A row is set aside, with the reason, when it has no user turn, when its prompt leaves the model
no room for `max_new_tokens` (the model would cut the prompt), when the model writes nothing,
or when the answer reaches `max_new_tokens` (cut off; `keep_truncated=true` keeps it): with
candidates, when none is usable. Rows
answered get `answered_by` (the model's name in the recipe); rows left as they were, null.
Memory: the conversations of one node.
"""
from __future__ import annotations

import pyarrow as pa

from . import _turns
from .base import Op, P


class Respond(Op):
    name = "respond"
    kind = "map"

    def rewrites(self, args):  # answering unanswered rows leaves what was said of their questions true
        return "writes new answers over the old ones" if args.get("replace") else ""
    version = 1
    doc = "Answer each row's last user turn with an LM (instruction-only rows; every row with replace=true)."
    params = (
        P("model", "model", required=True, doc="the LM that answers (causal_lm, or an endpoint)"),
        P("replace", "bool", default=False,
          doc="answer rows that have an answer too: the turns after the last user turn are replaced"),
        P("all_turns", "bool", default=False,
          doc="with replace: answer every user turn again, in order, not only the last (the earlier answers "
              "in each prompt are the new ones)"),
        P("turns", "column", doc="a list column of user turns (MT-Bench's `turns`): the conversation is built "
                                 "from them, each answered in order"),
        P("system", "str", doc="a system prompt for rows without a system turn (written into the row's turns)"),
        P("max_new_tokens", "int", default=512, min=1, doc="the longest answer; one that reaches it is cut off"),
        P("keep_truncated", "bool", default=False, doc="keep answers cut off at max_new_tokens (default: set aside)"),
        P("candidates", "int", default=1, min=1, max=16,
          doc="answers sampled per turn (temperature > 0); `pick` keeps the best (rejection sampling)"),
        P("pick", "model", doc="a reward (or classifier) model scoring each candidate as the answer to its turn"),
        P("temperature", "float", default=0.0, min=0.0, max=2.0, doc="0: greedy"),
        P("seed", "int", default=0, doc="sampling seed (with temperature > 0)"),
        P("column", "str", default="answered_by", doc="the new column: the model's name on rows it answered"),
    )

    def adds(self, args):
        return [args.get("column", "answered_by")] + (["answer_reward"] if args.get("pick") else [])

    def types(self, args):
        return {args.get("column", "answered_by"): "str"} | ({"answer_reward": "float"} if args.get("pick") else {})

    def column_types(self, args):
        return {"turns": "list"}

    def model_kinds(self, args):
        return {"model": ("causal_lm",), "pick": ("reward", "classifier")}

    def model_calls(self, args):
        return {"model": ("generate",), "pick": ("classify",)}

    def check(self, args):
        if args.get("system") is not None and not str(args["system"]).strip():
            return [("system", "`system` is empty: leave it out for no system prompt")]
        n = args.get("candidates", 1)
        if isinstance(n, int) and n > 1 and not args.get("pick"):
            return [("candidates", f"{n} candidates need `pick=<reward model>` to choose among them")]
        if args.get("all_turns") and not args.get("replace"):
            return [("all_turns", "`all_turns` answers again the turns that have answers: give `replace=true` too")]
        if args.get("all_turns") and args.get("turns"):
            return [("all_turns", "`turns=` gives the turns to answer, each in order already: leave `all_turns` out")]
        if args.get("pick") and not (isinstance(n, int) and n > 1):
            return [("pick", "`pick` chooses among candidates: give `candidates=` 2 or more")]
        t = args.get("temperature", 0.0)
        if isinstance(n, int) and n > 1 and isinstance(t, (int, float)) and t == 0:
            return [("candidates", "at temperature 0 every candidate is the same greedy answer: give `temperature=` "
                                   "above 0 (0.7, say)")]
        return []

    def run(self, ctx, args, inputs):
        src = inputs[0]
        rt, name = ctx.runtime, args["model"]
        model = ctx.models[name]
        # ShareGPT's kept turns are not touched: a sink writes them with the new text when they
        # still line up with the turns (a replaced answer), and not at all when they do not
        cols = ["messages", "instruction", "response"]
        tbl = src.arrow(cols + ([args["turns"]] if args.get("turns") else []))
        convs = [list(m or []) for m in tbl.column("messages").to_pylist()]
        plans, drop = plan_rows(convs, _values(tbl.column(args["turns"])) if args.get("turns") else None,
                                args.get("replace", False), args.get("system"), args.get("turns"),
                                args.get("all_turns", False))
        answerer = Answerer(rt, model, args, ctx.progress, ctx.models[args["pick"]] if args.get("pick") else None)
        answered = answerer.run(plans, drop)
        data = {c: tbl.column(c).to_pylist() for c in cols}
        by = [None] * tbl.num_rows
        for i, msgs in answered.items():
            data["messages"][i] = msgs
            data["instruction"][i], data["response"][i] = _turns.pair(msgs, data["instruction"][i], data["response"][i])
            by[i] = name
        ctx.info.update({"answered": len(answered), "left as they were": tbl.num_rows - len(answered) - len(drop)})
        if not answered:
            ctx.warn("no row was answered" + (" (every row has an answer: `replace=true` answers them again)"
                                               if not drop and not args.get("replace") else ""))
        new = {c: pa.array(data[c], tbl.schema.field(c).type) for c in ("messages", "instruction", "response")}
        new[args.get("column", "answered_by")] = pa.array(by, pa.string())
        if args.get("pick"):
            new["answer_reward"] = pa.array([answerer.rewards.get(i) if i in answered else None
                                             for i in range(tbl.num_rows)], pa.float64())
        ctx.out.add_columns(src, pa.table(new), drop=drop or None)


def plan_rows(convs: list[list[dict]], turn_lists, replace: bool, system: str | None, turns_col: str | None,
              all_turns: bool = False):
    """Per row to answer: (the conversation before the first turn to answer, the user turns to
    answer in order); and the rows set aside, with why. Rows that have their answer (the last
    turn is an assistant's, not empty) are neither, unless `replace`. With `all_turns`, every
    user turn of the row is answered in order (a row whose turns do not alternate is set aside:
    the answers would change its shape)."""
    plans: dict[int, tuple[list[dict], list[str]]] = {}
    drop: dict[int, str] = {}
    for i, msgs in enumerate(convs):
        head = [m for m in msgs[:1] if m.get("role") == "system"] or \
            ([{"role": "system", "content": system}] if system else [])
        if turn_lists is not None and turn_lists[i] is not None:
            asks = turn_lists[i]
            if not isinstance(asks, list) or not all(isinstance(t, str) for t in asks):
                drop[i] = f"respond: `{turns_col}` is not a list of texts"
                continue
            if not asks:
                drop[i] = f"respond: `{turns_col}` holds no turn to answer"
                continue
            if _answered(msgs) and not replace and _user_texts(msgs) == asks:
                continue
            plans[i] = (head, list(asks))
            continue
        last_user = max((j for j, m in enumerate(msgs) if m.get("role") == "user"), default=None)
        if last_user is None:
            drop[i] = "respond: no user turn to answer"
            continue
        if _answered(msgs) and not replace:
            continue
        if all_turns:
            talk = [m.get("role") for m in msgs if m.get("role") != "system"]
            if (any(r == talk[j + 1] for j, r in enumerate(talk[:-1])) or talk[0] != "user"
                    or any(m.get("role") == "system" for m in msgs[1:])):
                drop[i] = ("respond: the turns do not alternate between user and assistant (all_turns would "
                           "change the conversation's shape)")
                continue
            plans[i] = (head, _user_texts(msgs))
            continue
        before = [m for m in msgs[:last_user] if m.get("role") != "system"]
        plans[i] = (head + [{"role": m["role"], "content": m.get("content") or ""} for m in before],
                    [msgs[last_user].get("content") or ""])
    return plans, drop


def _values(col) -> list:
    """A column's values; a JSON column's (its values' types differ from row to row) parsed."""
    import json
    vals = col.to_pylist()
    if isinstance(col.type, pa.JsonType):
        return [None if v is None else json.loads(v) for v in vals]
    return vals


def _answered(msgs: list[dict]) -> bool:
    return bool(msgs) and msgs[-1].get("role") == "assistant" and bool((msgs[-1].get("content") or "").strip())


def _user_texts(msgs: list[dict]) -> list[str]:
    return [m.get("content") or "" for m in msgs if m.get("role") == "user"]


class Answerer:
    """The rounds of generation: round k answers the k-th turn of every plan that has one, in one
    batched call to the model (the runtime batches and caches); with `candidates`, each turn's
    usable answers are scored by `pick` in one call and the best is kept."""

    def __init__(self, rt, model, args: dict, progress, pick=None):
        self.rt, self.model, self.progress, self.pick = rt, model, progress, pick
        self.mnt = args.get("max_new_tokens", 512)
        self.n = args.get("candidates", 1)
        self.temperature, self.seed = args.get("temperature", 0.0), args.get("seed", 0)
        self.keep_cut = args.get("keep_truncated", False)
        ctx_len = rt.context_length(model)
        # what the backend leaves the prompt (runtime/hf.py `generate_batch`): a longer one is
        # cut, and the answer gets the rest of the context at most
        self.room = None if not ctx_len else max(ctx_len // 2, ctx_len - self.mnt)
        self.cut_at = self.mnt if not ctx_len else min(self.mnt, ctx_len - self.room)
        self.ctx_len = ctx_len
        self.rewards: dict[int, float] = {}  # row -> the reward of its last kept answer

    def run(self, plans: dict, drop: dict) -> dict[int, list[dict]]:
        convs = {i: list(head) for i, (head, _) in plans.items()}
        live = sorted(plans)
        k = 0
        while live:
            asks = [(i, plans[i][1][k]) for i in live]
            for i, text in asks:
                convs[i].append({"role": "user", "content": text})
            prompts = [self.rt.chat_turns(self.model, convs[i]) for i, _ in asks]
            fits = self._fits(prompts)
            todo = [j for j, ok in enumerate(fits) if ok is True]
            for j, ok in enumerate(fits):
                if ok is not True:
                    drop[asks[j][0]] = f"respond: {_nth(k, plans[asks[j][0]][1])}the prompt is {ok}"
            outs = self.rt.generate(self.model, [prompts[j] for j in todo], n=self.n, max_new_tokens=self.mnt,
                                    temperature=self.temperature, seed=self.seed, progress=self.progress, ends=True)
            usable = {}  # row -> its usable answers, in the order generated
            for j, out in zip(todo, outs):
                i = asks[j][0]
                verdicts = [self._why(t, cut) for t, cut in out]
                usable[i] = [t.strip() for (t, _), why in zip(out, verdicts) if why is None]
                if not usable[i]:
                    drop[i] = f"respond: {_nth(k, plans[i][1])}{verdicts[0]}" + (
                        f" (and the other {self.n - 1} candidates were unusable too)" if self.n > 1 else "")
            for i, answer in self._chosen(usable, convs).items():
                convs[i].append({"role": "assistant", "content": answer})
            k += 1
            live = [i for i in live if i not in drop and len(plans[i][1]) > k]
        return {i: c for i, c in convs.items() if i not in drop}

    def _why(self, text: str, cut: bool) -> str | None:
        """Why an answer is unusable (empty, cut off: generation ended at the token limit, as the
        model counted or the server said), or None."""
        if not text.strip():
            return "the model wrote an empty answer"
        if not self.keep_cut and cut:
            return (f"the answer was cut off at {self.cut_at} tokens (raise max_new_tokens, or keep_truncated=true)"
                    if self.cut_at == self.mnt else
                    f"the answer was cut off at {self.cut_at} tokens, what the model's context of {self.ctx_len} "
                    f"leaves (keep_truncated=true keeps it)")
        return None

    def _chosen(self, usable: dict, convs: dict) -> dict[int, str]:
        """Each row's answer: its first usable one, or with `pick` the one the reward model
        scores highest as the answer to the turn (the first of equals)."""
        rows = [i for i in usable if usable[i]]
        if self.pick is None:
            return {i: usable[i][0] for i in rows}
        pairs = [(convs[i][-1]["content"], a) for i in rows for a in usable[i]]
        if not pairs:
            return {}
        from ._common import reward_values
        scores = reward_values(self.rt.classify(self.pick, [q for q, _ in pairs], [a for _, a in pairs],
                                                progress=self.progress))
        out, at = {}, 0
        for i in rows:
            mine = scores[at:at + len(usable[i])]
            best = max(range(len(mine)), key=lambda c: (mine[c], -c))
            out[i], self.rewards[i] = usable[i][best], float(mine[best])
            at += len(usable[i])
        return out

    def _fits(self, prompts: list) -> list:
        """True for each prompt that leaves room for the answer, else why not."""
        if self.room is None:
            return [True] * len(prompts)
        # an endpoint's turns (no local template): the words of every turn
        counts = self.rt.token_counts(self.model, [p.messages() if hasattr(p, "messages") else p for p in prompts])
        return [True if n <= self.room else
                f"{n} tokens: with max_new_tokens={self.mnt} it does not fit the model's context of {self.ctx_len}"
                for n in counts]


def _nth(k: int, asks: list) -> str:
    return f"turn {k + 1} of {len(asks)}: " if len(asks) > 1 else ""


OP = Respond()
