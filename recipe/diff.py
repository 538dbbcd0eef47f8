"""`recipe diff A B`: what changed between two recipes, by meaning (linked IR, no spans),
so reformatting or moving lines shows nothing and a changed threshold shows one line."""
from __future__ import annotations

import json

from .ir import Recipe


def _args(op) -> dict:
    return {a.name: a.value.to_json() for a in op.args}


def _short(v) -> str:
    if isinstance(v, dict) and "lit" in v:
        return repr(v["lit"])
    if isinstance(v, dict) and "param" in v:
        return v["param"]
    if isinstance(v, dict) and "list" in v:
        return "[" + ", ".join(_short(x) for x in v["list"]) + "]"
    return "<expression>" if isinstance(v, dict) else repr(v)


def diff(a: Recipe, b: Recipe) -> list[str]:
    out: list[str] = []
    for kind, xs, ys in (("param", a.params, b.params), ("model", a.models, b.models),
                         ("source", a.sources, b.sources)):
        da, db = {x.name: x.to_json() for x in xs}, {y.name: y.to_json() for y in ys}
        out += [f"- {kind} {n}" for n in da if n not in db]
        out += [f"+ {kind} {n}" for n in db if n not in da]
        out += [f"~ {kind} {n}: {_describe(da[n], db[n])}" for n in da if n in db and da[n] != db[n]]
    na, nb = {n.name: n for n in a.nodes}, {n.name: n for n in b.nodes}
    out += [f"- node {n}" for n in na if n not in nb]
    out += [f"+ node {n} = {' | '.join(o.op for o in nb[n].ops) or '(alias)'}" for n in nb if n not in na]
    for n in (x for x in na if x in nb):
        x, y = na[n], nb[n]
        if [i.name for i in x.inputs] != [i.name for i in y.inputs]:
            out.append(f"~ node {n}: inputs {[i.name for i in x.inputs]} -> {[i.name for i in y.inputs]}")
        ox, oy = [o.op for o in x.ops], [o.op for o in y.ops]
        if ox != oy:
            out.append(f"~ node {n}: ops {' | '.join(ox)} -> {' | '.join(oy)}")
            continue
        for p, q, step in zip(x.ops, y.ops, x.step_names()):  # named as `plan` names the step
            pa, qa = _args(p), _args(q)
            for k in sorted(set(pa) | set(qa)):
                if pa.get(k) != qa.get(k):
                    unset = "(none)" if _own_name(p.op, k) else "(default)"  # derive's columns have no default
                    before = _short(pa[k]) if k in pa else unset
                    after = _short(qa[k]) if k in qa else unset
                    out.append(f"~ step {step} {k}: {before} -> {after}")
    # a sink is the node and the file it writes; its options (format, columns, shards) change in place
    sa = {(s["input"], json.dumps(s["path"])): s for s in (x.to_json() for x in a.sinks)}
    sb = {(s["input"], json.dumps(s["path"])): s for s in (x.to_json() for x in b.sinks)}
    out += [f"- write {s['input']} to {_short(s['path'])}" for k, s in sa.items() if k not in sb]
    out += [f"+ write {s['input']} to {_short(s['path'])}" for k, s in sb.items() if k not in sa]
    for k in (k for k in sa if k in sb and sa[k] != sb[k]):
        oa, ob = dict(map(tuple, sa[k]["options"])), dict(map(tuple, sb[k]["options"]))
        out += [f"~ write {k[0]} to {_short(sa[k]['path'])} {o}: {_short(oa[o]) if o in oa else '(default)'} -> "
                f"{_short(ob[o]) if o in ob else '(default)'}" for o in sorted(set(oa) | set(ob)) if oa.get(o) != ob.get(o)]
    out += expect_changes(a.expects, b.expects)
    return out


def expect_changes(a, b) -> list[str]:
    """Expectations dropped and added (a changed one is both), as `- expect NODE: CONDITION`."""
    from .syntax import to_text
    def line(e):
        return f"expect {e.node.name}" + (f" by {e.by_text}" if e.by else "") + f": {to_text(e.expr)}"
    ea, eb = [line(e) for e in a], [line(e) for e in b]
    return [f"- {e}" for e in ea if e not in eb] + [f"+ {e}" for e in eb if e not in ea]


def _own_name(op: str, key: str) -> bool:
    """`key` is a name the call makes (derive's columns), not one of the operator's parameters."""
    from . import ops as registry
    spec = registry.get(op)
    return bool(spec is not None and spec.variadic and spec.param(key) is None)


def _describe(x: dict, y: dict) -> str:
    keys = [k for k in set(x) | set(y) if x.get(k) != y.get(k)]
    return ", ".join(f"{k}: {_short(x.get(k))} -> {_short(y.get(k))}" for k in sorted(keys))
