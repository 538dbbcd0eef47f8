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
import re
from pathlib import Path

from .diagnostics import UserError
from .io.sinks import sink_shape
from .ui import expectation_values

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
    every = hub_configs(data)
    # the Hub loads all of a repository's configs with the loader its first config's files take
    # (datasets' `infer_module_for_data_files`): a config of another container would not load
    configs = [c for c in every if hub_loader(c) == hub_loader(every[0])] if every else []
    apart = [c for c in every if c not in configs]
    meta = ["---", "configs:"]
    for c in configs:
        meta += [f"- config_name: {_yaml(c['name'])}"] + (["  default: true"] if c.get("default") else []) + ["  data_files:"]
        for split, name, _ in c["files"]:
            meta += [f"  - split: {split}", f"    path: {_yaml(name)}"]
    if not data:
        meta[-1] = "configs: []"
    typed = [c for c in configs if c["features"] is not None]
    if typed:  # each column's type, so the Hub's loader does not guess it from the first rows
        import yaml
        info = [{"config_name": c["name"], "features": c["features"]} for c in typed]
        meta += ["dataset_info:"] + yaml.safe_dump(info, sort_keys=False, allow_unicode=True, width=1000).splitlines()
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
                    "| file | from node | rows | format | config / split |", "|---|---|---:|---|---|"]
    where = {name: f"`{c['name']}` / `{split}`" for c in configs for split, name, _ in c["files"]}
    where |= {name: "not a config (below)" for c in apart for _, name, _ in c["files"]}
    lines += [f"| `{name}` | `{s['name']}` | {s['rows']:,} | {sink_shape(s['path'], s.get('format'))}"
              + (f", {len(s['files'])} files" if s.get("files") else "") + f" | {where.get(name, '')} |"
              for name, s in files]
    if apart:
        lines += ["", f"The Hub reads every config of a repository with the loader of its first one ({hub_loader(configs[0])} "
                  "files here), so " + ", ".join(f"`{name}`" for c in apart for _, name, _ in c["files"])
                  + " would not load as a config: they are not listed; push them in a repository of their own, or write "
                  "every sink in one container."]
    aside = sum(n["rows_set_aside"] for n in m["nodes"])
    lines += ["", f"Rows that left a step are in `set_aside.jsonl` ({aside:,}), each with the step and the reason; "
              "`recipe explain --row ID` tells one row's path."]
    lines += _use(configs)
    lines += _sources(m.get("inputs") or {})
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
    if m.get("expectations"):  # what the recipe promised of its rows, as the run found them
        lines += ["", "## Expectations", "", "| node | expectation | values | met |", "|---|---|---|---|"]
        lines += [_expectation_row(e) for e in m["expectations"]]
    if m.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {_cell(w, 400)}" for w in m["warnings"]]
    vers = m.get("versions") or {}
    lines += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in vers.items())]
    if m.get("plugins"):  # operators from plugin packages: the card says whose code made the rows
        lines += ["", "Plugin operators: " + ", ".join(f"`{op}` ({v})" for op, v in m["plugins"].items())]
    if m.get("recipe_text"):
        lines += ["", "## The recipe", "", "```", m["recipe_text"].rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


# the words in a file name that the Hub reads as a split (datasets' SPLIT_KEYWORDS), by split
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
               "val": "validation", "dev": "validation", "test": "test", "testing": "test", "eval": "test",
               "evaluation": "test"}
# as the Hub finds them: between separators (`train.jsonl`, `vicuna_test.json`, not `pretrained.json`)
_SPLIT_WORD = re.compile(r"(?:^|(?<=[-._ 0-9]))(" + "|".join(sorted(SPLIT_NAMES, key=len, reverse=True))
                         + r")(?=[-._ 0-9])", re.IGNORECASE)


def split_of(path: str) -> tuple[str, str] | None:
    """(the split a file's name says, the name with that word as `{}`), or None."""
    name = Path(path).name
    m = _SPLIT_WORD.search(name)
    return (SPLIT_NAMES[m.group(1).lower()], name[:m.start()] + "{}" + name[m.end():]) if m else None


def hub_configs(data: list[tuple[str, dict]]) -> list[dict]:
    """The card's configs: files whose names differ only in a split's word (`data/train.jsonl`
    and `data/test.jsonl`, `vicuna_train.json` and `vicuna_test.json`), of one format and with
    the same columns, are one config's splits, named by the rest of the name (`vicuna`), else
    by the folder (`data`), else `default`; any other file is a config of its own, named by
    the file. Each: {"name", "files": [(split, path, sink)], "features"} (None where a file's
    columns have no declared types)."""
    groups: dict = {}
    for name, s in data:
        p = Path(s.get("file") or name)  # the path the recipe writes (shards: their sink's)
        found = split_of(str(p))
        key = ("splits", str(p.parent), found[1], s.get("format")) if found else ("file", name)
        g = groups.get(key, [])
        if g and (found[0] in {sp for sp, _, _ in g} or not _fits(g, s)):
            key = ("file", name)  # two files of one split, or columns that differ: configs apart
        groups.setdefault(key, []).append((found[0] if found else "train", name, s))
    out = []
    for key, files in groups.items():
        if len(files) > 1:
            rest = key[2].split(".")[0].replace("{}", "").strip("-._ ")
            name = rest or (key[1].replace("/", "_") if key[1] not in ("", ".") else "default")
            out.append({"name": name, "files": files, "features": _features(files)})
    taken = {c["name"] for c in out}
    names = [s.get("file") or n for n, s in data]
    for key, files in groups.items():
        if len(files) == 1:
            name = _config_name(files[0][2].get("file") or files[0][1], names)
            if name in taken:  # a split config's name (`vicuna.jsonl` beside vicuna's splits)
                name = Path(files[0][2].get("file") or files[0][1]).name.replace(".", "_")
            out.append({"name": name, "files": files, "features": _features(files)})
    out.sort(key=lambda c: next(i for i, (n, _) in enumerate(data) if n == c["files"][0][1]))  # the recipe's order
    seen: set[str] = set()
    for c in out:  # config names must differ: a later one that repeats an earlier gets a number
        base, i = c["name"], 2
        while c["name"] in seen:
            c["name"], i = f"{base}_{i}", i + 1
        seen.add(c["name"])
    if len(out) > 1 and "default" not in seen:  # `load_dataset(repo)` then loads the splits
        c = next((c for c in out if len(c["files"]) > 1), None)
        if c is not None:
            c["default"] = True
    # the default first: the Hub picks the loader of every config by the first one's files
    return sorted(out, key=lambda c: not (c.get("default") or c["name"] == "default"))


SOURCE_FILES = 10  # a source's files listed on the card; all of them are in manifest.json


def _sources(inputs: dict) -> list[str]:
    """Each source with its files' SHA-256 (as `sha256sum` prints it), so that a reader can
    check they hold the same data: a folder's first files, and how many more the manifest
    lists. A manifest written before session 41 has only the read's cache key, which is no
    file's SHA-256: it is shown as that."""
    lines = ["", "## Sources", "", "| source | file | bytes | SHA-256 |", "|---|---|---:|---|"]
    for name, v in inputs.items():
        files = v.get("files")
        if files is None:
            lines.append(f"| `{name}` | `{v.get('path')}` | | (cache key `{str(v.get('sha256', ''))[:16]}…`, not the file's) |")
            continue
        for f in files[:SOURCE_FILES]:
            lines.append(f"| `{name}` | `{f['file']}` | {f['bytes']:,} | `{f['sha256']}` |")
        if len(files) > SOURCE_FILES:
            lines.append(f"| `{name}` | and {len(files) - SOURCE_FILES:,} more files ({len(files):,} in all; each with its "
                         f"SHA-256 in `manifest.json`) | {sum(f['bytes'] for f in files):,} in all | |")
    return lines


def _use(configs: list[dict]) -> list[str]:
    """How to load each config once this folder is a dataset repository on the Hub."""
    if not configs:
        return []
    calls = []
    default = len(configs) == 1 or configs[0].get("default") or configs[0]["name"] == "default"
    for i, c in enumerate(configs):  # the default needs no name; without one, every config does
        name = "" if i == 0 and default else ", " + json.dumps(c["name"])
        calls.append(f'load_dataset("USER/NAME"{name})  # ' + ", ".join(dict.fromkeys(sp for sp, _, _ in c["files"])))
    return ["", "## Use it", "", "Upload this folder as a dataset repository (`hf upload USER/NAME path/to/this/folder "
            "--repo-type dataset`; `--exclude set_aside.jsonl` leaves the rows set aside behind), then:",
            "", "```python", "from datasets import load_dataset", *calls, "```"]


def hub_loader(config: dict) -> str:
    """The `datasets` loader a config's files take, by their extension (compression aside):
    `json` (JSON lines and arrays), `parquet`, `csv`, or `tsv` (the csv loader told the tab)."""
    name = Path(config["files"][0][1]).name.lower()
    for ext, loader in ((".parquet", "parquet"), (".csv", "csv"), (".tsv", "tsv"), (".jsonl", "json"), (".json", "json")):
        if ext + "." in name + ".":
            return loader
    return "json"


def _fits(files: list, sink: dict) -> bool:
    """Whether a file can be another split of these files' config: the same columns, or no
    declared columns for any of them (CSV files')."""
    feats = [s.get("features") for s in [*(s for _, _, s in files), sink] if s.get("rows", 1)]
    return all(f is None for f in feats) or _shared(feats) is not None


def _features(files: list) -> list | None:
    """The features the files share (a column null in one takes another's type), or None; an
    empty file holds nothing to type."""
    return _shared([s.get("features") for _, _, s in files if s.get("rows", 1)])


def _shared(feats: list) -> list | None:
    from .io.features import merged
    got = feats[0] if feats else None
    for f in feats[1:]:
        got = merged(got, f)
    return got


def _config_name(path: str, paths: list[str]) -> str:
    """A data file's config on the Hub: its name without extensions, unless another file shares
    that: then its folder too (`pool/train.jsonl`, `data/train.jsonl`: `pool_train`), or its whole
    name (`x.jsonl` and `x.parquet`); config names must differ (the nodes' names did not:
    train.jsonl and train.json written from one node were two `train` configs)."""
    def stem(p):
        return Path(p).name.split(".")[0]
    name = Path(path).name
    if sum(1 for p in paths if stem(p) == stem(name)) == 1:
        return stem(name)
    folder = str(Path(path).parent)
    if folder != "." and sum(1 for p in paths if stem(p) == stem(name) and str(Path(p).parent) == folder) == 1:
        return f"{folder.replace('/', '_')}_{stem(name)}"
    return name.replace(".", "_")


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


def _expectation_row(e: dict) -> str:
    cond = (f"by {e['by']}: " if e.get("by") else "") + e["expect"]
    return (f"| `{e['node']}` | `{_cell(cond, 200)}` | {_cell(expectation_values(e), 300)} | "
            f"{'yes' if e['ok'] else '**no**'} |")


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
