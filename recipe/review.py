"""`recipe plan FILE --against OLD`: what a change to a recipe does, step by step, for a
pull request. Steps are matched by name; a matched step is unchanged when its fingerprint is,
else the parts of the fingerprint that differ say how (params old -> new, model, input data,
code, upstream). With a step cache, each step of the new plan is cached or says why it will
re-run. Printed as text, JSON or markdown (with the Mermaid graph) for a PR comment."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import UserError


@dataclass
class StepChange:
    name: str
    op: str
    status: str                                   # new | removed | changed | unchanged
    how: list[str] = field(default_factory=list)  # for changed: what differs
    cache: str = ""                               # cached | the reason it will run ("" without a cache)
    estimate: str = ""                            # rows, model requests, tokens, seconds (with a cache)


def old_text(against: str, file: str) -> tuple[str | None, str]:
    """(the old recipe's text or None when it did not exist, a label): `against` is a file
    or `git:REF` (the recipe's own path at that revision)."""
    if not against.startswith("git:"):
        p = Path(against)
        if not p.exists():
            raise UserError(f"--against {against}: no such file")
        from .link import read_text
        try:
            return read_text(p), against
        except UserError as e:  # a folder, a file that is not text
            raise UserError(f"--against {against}: {e}") from None
    ref, path = against[4:] or "HEAD", Path(file).resolve()
    try:
        top = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise UserError(f"--against {against}: {file} is not in a git repository")
    rel = path.relative_to(Path(top).resolve()).as_posix()
    got = subprocess.run(["git", "-C", top, "show", f"{ref}:{rel}"], capture_output=True, text=True)
    if got.returncode != 0:
        if subprocess.run(["git", "-C", top, "rev-parse", "--verify", "--quiet", ref + "^{commit}"],
                          capture_output=True).returncode != 0:
            raise UserError(f"--against {against}: no git revision `{ref}`")
        return None, f"{ref}:{rel} (not there: the recipe is new)"
    return got.stdout, f"{ref}:{rel}"


def compare(old, new, store=None, weights_dir=None) -> list[StepChange]:
    """Changes from plan `old` (None: no old recipe) to plan `new`, in the new plan's order,
    removed steps last; with `store`, whether each step is cached (training steps: while
    their weights are in `weights_dir`)."""
    from .plan import status
    before = {s.name: s for s in old.steps} if old else {}
    out = []
    for s in new.steps:
        o = before.get(s.name)
        if o is None:
            ch = StepChange(s.name, s.op, "new")
        elif o.fingerprint == s.fingerprint:
            ch = StepChange(s.name, s.op, "unchanged")
        else:
            ch = StepChange(s.name, s.op, "changed", _how(o, s, old, new))
        if store is not None:
            ch.cache = status(store, s, weights_dir)
        out.append(ch)
    names = {s.name for s in new.steps}
    out += [StepChange(s.name, s.op, "removed") for s in (old.steps if old else []) if s.name not in names]
    return out


def sink_changes(old, new) -> list[str]:
    """What the outputs gain, lose or write differently: `+ write NODE to PATH`, `- write ...`,
    `~ PATH: ...` (a sink is matched by its path); and the expectations added and dropped
    (`+ expect NODE: ...`, `- expect ...`: a changed one is both)."""
    def key(s):
        return s["path"]

    def shape(s):
        return {"node": s["name"], "format": s["format"] or "jsonl", **s["options"]}
    before = {key(s): s for s in (old.sinks if old else [])}
    after = {key(s): s for s in new.sinks}
    out = [f"+ write {s['name']} to {p}" for p, s in after.items() if p not in before]
    out += [f"- write {s['name']} to {p}" for p, s in before.items() if p not in after]
    for p in (p for p in after if p in before):
        a, b = shape(before[p]), shape(after[p])
        diff = [f"{k}: {json.dumps(a.get(k), ensure_ascii=False)} -> {json.dumps(b.get(k), ensure_ascii=False)}"
                for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if diff:
            out.append(f"~ {p}: {'; '.join(diff)}")
    # what the outputs must be: a dropped or loosened expectation is a change a reviewer must see
    from .ui import expectation_text
    ea = [expectation_text({**e, "expect": e["text"]}) for e in (old.expects if old else [])]
    eb = [expectation_text({**e, "expect": e["text"]}) for e in new.expects]
    out += [f"- {e}" for e in ea if e not in eb] + [f"+ {e}" for e in eb if e not in ea]
    return out


def _how(o, s, old, new) -> list[str]:
    a, b = o.parts, s.parts
    how = []
    if a.get("op") != b.get("op"):
        how.append(f"operator {a.get('op')} -> {b.get('op')}")
    if a.get("version") != b.get("version"):
        how.append(f"op version {a.get('version')} -> {b.get('version')}")
    if a.get("code") != b.get("code"):
        how.append("code changed (a new version of the operator or its algorithms)")
    if a.get("data") != b.get("data"):
        how.append("input data changed")
        if o.args.get("path") != s.args.get("path"):  # shown, though not in the key: contents are
            how.append(f"path: {o.args.get('path')} -> {s.args.get('path')}")
    if a.get("files") != b.get("files"):
        how.append("template file changed")
    if a.get("source") != b.get("source"):
        how.append(f"source {a.get('source')} -> {b.get('source')}")
    oa, na = a.get("args", {}), b.get("args", {})
    for k in sorted(set(oa) | set(na)):
        if oa.get(k) != na.get(k):  # compared in canonical form, shown as written
            how.append(f"{k}: {_val(o.args.get(k), oa.get(k))} -> {_val(s.args.get(k), na.get(k))}")
    if a.get("models") != b.get("models"):
        for m in dict.fromkeys(o.models + s.models):
            x, y = old.models.get(m) if m in o.models else None, new.models.get(m) if m in s.models else None
            if x is None or y is None or x.get("identity") != y.get("identity"):
                src = lambda d: d["source"] if d else "(none)"  # noqa: E731
                how.append(f"model {m}: {src(x)} -> {src(y)}" if src(x) != src(y) else
                           f"model {m}: {src(y)} resolves to other weights ({x['identity']} -> {y['identity']})")
    if a.get("parents") != b.get("parents") and not how:
        pa, pb = a.get("parents") or [], b.get("parents") or []
        # name the inputs that changed (a union of three whose first changed names one)
        which = [n for n, x, y in zip(s.inputs, pa, pb) if x != y] \
            if list(o.inputs) == list(s.inputs) and len(pa) == len(pb) == len(s.inputs) else s.inputs
        how.append("upstream changed (" + ", ".join(which or s.inputs) + ")")
    elif a.get("parents") != b.get("parents"):
        how.append("and upstream changed")
    return how


def _val(v, canon) -> str:
    if v is None:
        return "(unset)"
    if hasattr(v, "to_json"):  # an expression: as written, with the params it uses bound
        from .syntax import to_text
        bound = canon.get("params") if isinstance(canon, dict) else None
        return f"`{to_text(v)}`" + (f" ({', '.join(f'{k}={x}' for k, x in bound.items())})" if bound else "")
    return json.dumps(canon, ensure_ascii=False, sort_keys=True)


def summary(changes: list[StepChange]) -> str:
    count = {k: sum(1 for c in changes if c.status == k) for k in ("new", "changed", "removed", "unchanged")}
    runs = sum(1 for c in changes if c.cache and c.cache != "cached" and c.status != "removed")
    text = ", ".join(f"{v} {k}" for k, v in count.items() if v)
    return text + (f"; {runs} step(s) will run, the rest come from the cache" if any(c.cache for c in changes) else "")


def as_text(changes: list[StepChange], label: str, sinks: list[str] = ()) -> str:
    lines = [f"against {label}: {summary(changes)}"]
    nw = max([24] + [len(c.name) for c in changes])
    ow = max([10] + [len(c.op or "") for c in changes])
    for c in changes:
        cache = f"  [{c.cache}]" if c.cache else ""
        lines.append(f"{c.status:<10} {c.name:<{nw}} {c.op:<{ow}}{cache}".rstrip())
        lines += [f"{'':<11}{h}" for h in c.how]
        if c.estimate:
            lines.append(f"{'':<11}estimate: {c.estimate}")
    if sinks:
        lines += ["outputs:"] + [f"  {x}" for x in sinks]
    return "\n".join(lines) + "\n"


def as_json(changes: list[StepChange], label: str, sinks: list[str] = ()) -> str:
    return json.dumps({"against": label, "summary": summary(changes),
                       "steps": [c.__dict__ for c in changes], "sinks": list(sinks)}, indent=2, ensure_ascii=False) + "\n"


def as_markdown(changes: list[StepChange], label: str, graph: str, sinks: list[str] = ()) -> str:
    rows = ["| step | op | change | how | cache | estimate |", "|---|---|---|---|---|---|"]
    for c in changes:
        how = "<br>".join(h.replace("|", "\\|") for h in c.how)
        rows.append(f"| `{c.name}` | {c.op} | **{c.status}** | {how} | {c.cache} | {c.estimate} |")
    outputs = ("\n\nOutputs:\n" + "\n".join(f"- `{x}`" for x in sinks)) if sinks else ""
    return (f"### recipe plan against `{label}`\n\n{summary(changes)}\n\n" + "\n".join(rows) + outputs
            + f"\n\n```mermaid\n{graph}```\n")
