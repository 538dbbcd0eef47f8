"""A dataset card for a finished run: `OUT/README.md` as the Hugging Face Hub reads one (YAML
metadata naming the data files, then Markdown), written from the run's manifest alone, so
what it says is what the run did: the files and their rows, the sources with their SHA-256,
each step's rows in, created, out and set aside with what it reported (languages found,
personal data replaced, scores' ranges), the models, the versions, and the recipe's own text.

    recipe card --out OUT [--cache-dir DIR] [--to FILE]      (or `recipe run ... --card`)

The Hub's `language` metadata is the languages of the written rows, read from the step cache
(their `language` column, which `language()` adds); without the cache, or without such a
column, the card names none rather than guess.
"""
from __future__ import annotations

import json
from pathlib import Path

from .diagnostics import UserError
from .io.sinks import sink_shape

# the Hub's size buckets (dataset card metadata `size_categories`)
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def size_category(n: int) -> str:
    return next((label for top, label in _SIZES if n < top), "n>100M")


def card(out: Path, cache_dir: Path | None = None) -> str:
    """The card's text, from `out/manifest.json` (and the written rows' languages from the step
    cache at `cache_dir`, when it holds them)."""
    mf = out / "manifest.json"
    if not mf.is_file():
        raise UserError(f"no finished run in {out} (no manifest.json): run the recipe with --out {out} first")
    m = json.loads(mf.read_text(encoding="utf-8"))
    sinks = m.get("sinks") or []
    from .manifest import sink_shown
    files = [(sink_shown(s, inside=True), s) for s in sinks]  # a sharded sink's files as the glob the Hub takes
    # every sink's extension is one the Hub reads (`check` allows no other); a tag vocabulary
    # (`tag_counts`) is not rows
    data = [(name, s) for name, s in files if s.get("format") != "tag_counts"]
    most = max((s["rows"] for _, s in data), default=0)
    langs = _languages(m, [s for _, s in data], cache_dir)
    meta = ["---", "configs:"]
    for name, s in data:
        meta += [f"- config_name: {_yaml(_config_name(_declared(name, s), [_declared(n, t) for n, t in data]))}",
                 "  data_files:",
                 "  - split: train", f"    path: {_yaml(name)}"]
    if not data:
        meta[-1] = "configs: []"
    meta += ["size_categories:", f"- {size_category(most)}", "task_categories:", "- text-generation", "tags:",
             "- instruction-tuning", "- recipe"]
    if langs:
        meta += ["language:"] + [f"- {lang}" for lang in langs]
    meta.append("---")
    lines = meta + ["", f"# {m.get('recipe', 'dataset')}", "",
                    f"Made by `recipe` {m.get('versions', {}).get('recipe', '')} on the {m.get('engine', 'duckdb')} "
                    f"engine, from the recipe at the end of this card"
                    + (f" (`{m['recipe_file']}`)" if m.get("recipe_file") and m["recipe_file"] != "<string>" else "")
                    + f"; recipe hash `{m.get('recipe_hash', '')[:16]}`.", "", "## Files", "",
                    "| file | from node | rows | format |", "|---|---|---:|---|"]
    lines += [f"| `{name}` | `{s['name']}` | {s['rows']:,} | {sink_shape(s['path'], s.get('format'))}"
              + (f", {len(s['files'])} files" if s.get("files") else "") + " |" for name, s in files]
    aside = sum(n["rows_set_aside"] for n in m["nodes"])
    lines += ["", f"Rows that left a step are in `set_aside.jsonl` ({aside:,}), each with the step and the reason; "
              "`recipe explain --row ID` tells one row's path.", "", "## Sources", "", "| source | path | SHA-256 |",
              "|---|---|---|"]
    lines += [f"| `{k}` | `{v.get('path')}` | `{str(v.get('sha256', ''))[:16]}…` |" for k, v in (m.get("inputs") or {}).items()]
    lines += ["", "## How the rows were chosen", "", "| step | op | in | created | out | set aside | reported |",
              "|---|---|---:|---:|---:|---:|---|"]
    for n in m["nodes"]:
        lines.append(f"| `{n['name']}` | {n['op']} | {n['rows_in']:,} | {n['rows_created']:,} | {n['rows_out']:,} | "
                     f"{n['rows_set_aside']:,} | {_stats(n.get('stats') or {})} |")
    if m.get("models"):
        lines += ["", "## Models", "", "| name | kind | identity |", "|---|---|---|"]
        lines += [f"| `{k}` | {v['kind']} | `{v['identity']}` |" for k, v in m["models"].items()]
    if m.get("params"):
        lines += ["", "## Parameters", "", "| param | value |", "|---|---|"]
        lines += [f"| `{k}` | `{json.dumps(v)}` |" for k, v in m["params"].items()]
    if m.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {_cell(w, 400)}" for w in m["warnings"]]
    vers = m.get("versions") or {}
    lines += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in vers.items())]
    if m.get("recipe_text"):
        lines += ["", "## The recipe", "", "```", m["recipe_text"].rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


def _declared(name: str, sink: dict) -> str:
    """The sink's file name as the recipe writes it (`train.parquet` for its shards)."""
    return Path(sink.get("file") or name).name


def _config_name(name: str, names: list[str]) -> str:
    """A data file's config on the Hub: its name without extensions, unless another file shares
    that (`x.jsonl` and `x.parquet`), then its whole name; config names must differ (the nodes'
    names did not: train.jsonl and train.json written from one node were two `train` configs)."""
    stem = name.split(".")[0]
    return stem if sum(1 for n in names if n.split(".")[0] == stem) == 1 else name.replace(".", "_")


def _languages(m: dict, sinks: list, cache_dir: Path | None) -> list[str]:
    """The values of the `language` column of the rows the data sinks wrote (their steps'
    tables in the step cache); none when the cache or the column is missing."""
    if cache_dir is None or not Path(cache_dir).is_dir():
        return []
    from .engine.store import Store
    fps = {n["name"]: n["fingerprint"] for n in m["nodes"]}
    found: set[str] = set()
    store = Store(cache_dir)
    try:
        for s in sinks:
            try:
                table = store.table_of(fps[s["step"]])
            except Exception:  # pruned or another cache: say nothing rather than guess
                continue
            if "language" in table.columns():
                found |= {v for v in table.column("language") if isinstance(v, str)}
    finally:
        store.close()
    return sorted(found)


def _stats(st: dict) -> str:
    """A step's reported statistics in one table cell."""
    parts = []
    for k, v in st.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a} {_num(b)}" for a, b in list(v.items())[:8])
        parts.append(f"{k}: {_num(v)}")
    return _cell("; ".join(parts), 300)


def _num(v):
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else (f"{v:.4g}" if isinstance(v, float) else v)


def _cell(text, limit: int) -> str:
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _yaml(s: str) -> str:
    return json.dumps(s)  # a JSON string is a YAML scalar


def write_card(out: Path, to: Path | None = None, cache_dir: Path | None = None) -> Path:
    from .faults import atomic_write
    to = to or out / "README.md"
    atomic_write(to, card(out, cache_dir).encode("utf-8"))
    return to
