"""derive: add or replace columns computed by row expressions, e.g. `derive(len=length(response))`."""
from __future__ import annotations

from ..expr import quote_ident as q, to_sql
from .base import Op


class Derive(Op):
    name = "derive"
    version = 2  # 2: `messages` follows `instruction` and `response`; words/trim/log/sqrt/% anew
    doc = "Add (or replace) columns: each keyword argument is a column name and a row expression."
    variadic = "expr"

    def adds(self, args):
        return list(args)

    def check(self, args):
        return [] if args else [("", "`derive` needs at least one `name=expression`")]

    def run(self, ctx, args, inputs):
        existing = set(ctx.columns(inputs[0]))
        sels, binds, replaced = [], [], []
        for name, e in args.items():
            sql, b = to_sql(e, ctx.params)
            if name in ("instruction", "response"):  # conversation text: text, never null
                sql = f"coalesce(CAST({sql} AS VARCHAR), '')"
            sels.append(f"{sql} AS {q(name)}")
            binds += b
            if name in existing:
                replaced.append(q(name))
        excl = f" EXCLUDE ({', '.join(replaced)})" if replaced else ""
        ctx.con.execute(f"CREATE TABLE {q(ctx.out)} AS SELECT *{excl}, {', '.join(sels)} FROM {q(inputs[0])} ORDER BY rowid",
                        binds)
        if "instruction" in args or "response" in args:
            # the conversation is the text writers and operators read: keep it in step
            ctx.con.execute(f"UPDATE {q(ctx.out)} SET messages = "
                            f"{sync_messages_sql('instruction' in args, 'response' in args)}")


def sync_messages_sql(instruction: bool, response: bool) -> str:
    """SQL for `messages` with its first user turn set to `instruction` and its first
    assistant turn set to `response` (a missing turn is inserted: the user turn after any
    system turns, the assistant turn right after the first user turn, if `response` is not empty)."""
    m = "messages"
    if instruction:
        pos = f"list_position(list_transform({m}, x -> x.role), 'user')"
        user = "[struct_pack(role := 'user', content := instruction)]"
        m = (f"(CASE WHEN {pos} IS NULL THEN list_concat(list_filter({m}, x -> x.role = 'system'), {user}, "
             f"list_filter({m}, x -> x.role <> 'system')) ELSE list_transform({m}, (x, i) -> CASE WHEN i = {pos} "
             f"THEN struct_pack(role := x.role, content := instruction) ELSE x END) END)")
    if response:
        apos = f"list_position(list_transform({m}, x -> x.role), 'assistant')"
        upos = f"list_position(list_transform({m}, x -> x.role), 'user')"
        turn = "[struct_pack(role := 'assistant', content := response)]"
        m = (f"(CASE WHEN {apos} IS NOT NULL THEN list_transform({m}, (x, i) -> CASE WHEN i = {apos} "
             f"THEN struct_pack(role := x.role, content := response) ELSE x END) "
             f"WHEN coalesce(response, '') = '' THEN {m} "
             f"WHEN {upos} IS NULL THEN list_concat({m}, {turn}) "
             f"ELSE list_concat({m}[1:{upos}], {turn}, {m}[{upos} + 1:]) END)")
    return m


OP = Derive()
