"""The Python API, mirrored by the CLI: `recipe.load(...)` then `.check()`, `.plan()`, `.run()`.

    >>> r = recipe.load("examples/quickstart.recipe")
    >>> result = r.run(params={"k": "10"}, out="out/quick")
    >>> result.table("picked").to_pandas()
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .check import CANONICAL_COLUMNS, Checked, check
from .checked import path_value
from .diagnostics import UserError, raise_if_errors
from .frontend import parse_any
from .ir import ListV, Lit, ParamRef, Recipe
from .link import link, load_file
from .manifest import source_entry


@dataclass
class Loaded:
    recipe: Recipe          # as written
    text: str
    file: str

    @property
    def linked(self) -> Recipe:
        return link(self.recipe)

    def source_paths(self, sources: dict[str, str] | None = None, params: dict | None = None) -> dict[str, str]:
        """Where each source reads from: `--source NAME=PATH` first, else the recipe's path. A
        path written in a recipe file (a literal, a param's default) is relative to that file,
        one given from outside (`--source`, `--set`, Python) to the working directory
        (`recipe.paths`). `params`: the params given from outside."""
        r = self.linked
        sources, params = dict(sources or {}), dict(params or {})
        names = {s.name for s in r.sources}
        for n in sources:
            if n not in names:
                from .diagnostics import did_you_mean
                hint = did_you_mean(n, names)
                raise UserError(f"the recipe has no source `{n}` (given a path to read)" + (f"; {hint[0]}" if hint else ""))
        out = {}
        for s in r.sources:
            if s.name in sources:
                out[s.name] = sources[s.name]
                continue
            v = path_value(s.path, r, params)
            out[s.name] = "" if v is None else str(v)  # no value: the check says so (E0703)
        return out

    def diagnose(self, params: dict | None = None, sources: dict[str, str] | None = None,
                 sniff: bool = True) -> Checked:
        """All checks, without raising: the result's `.ok` and `.diagnostics` say what was
        found (parse and link errors still raise `RecipeError`)."""
        r = self.linked
        cols, errors, notes, splits, headers = {}, {}, {}, {}, {}
        given = {s.name for s in r.sources if s.name in (sources or {})
                 or isinstance(s.path, ParamRef) and s.path.name in (params or {})}
        if sniff:
            from .io.formats import FORMATS
            from .io.csv_header import header_doubt
            from .io.readers import sniff_columns, source_splits
            fmt = {s.name: next((a.value.value for a in s.options if a.name == "format" and isinstance(a.value, Lit)), None)
                   for s in r.sources}
            fields = {s.name: next(([i.value for i in a.value.items] for a in s.options if a.name == "columns"
                                    and isinstance(a.value, ListV) and all(isinstance(i, Lit) for i in a.value.items)), None)
                      for s in r.sources}
            placeholder = self._is_stdlib()
            for name, path in self.source_paths(sources, params).items():
                if placeholder and name not in (sources or {}) or not path:
                    continue  # a library recipe's data comes from --source at run time; no value: E0703
                names = fields.get(name)
                found, err, note = sniff_columns(path, fmt.get(name) if fmt.get(name) in FORMATS else None,
                                           names if names and all(isinstance(x, str) for x in names)
                                           and len(set(names)) == len(names) else None)
                cols[name] = found
                if err:
                    errors[name] = err
                if note:
                    notes[name] = note
                if not err and (mixed := source_splits(path)):
                    splits[name] = mixed
                if (not err or "cannot tell the format" in err) and not names and (doubt := header_doubt(path)):
                    headers[name] = doubt
        return check(r, {k: str(v) for k, v in (params or {}).items()}, cols, errors, notes, splits, given, headers)

    def check(self, params: dict | None = None, sources: dict[str, str] | None = None,
              sniff: bool = True) -> Checked:
        """All checks. Raises `RecipeError` (its `.diagnostics` hold every error found)
        when the recipe cannot run; returns the result (warnings in `.diagnostics`) when it can."""
        c = self.diagnose(params, sources, sniff)
        raise_if_errors(c.diagnostics)
        return c

    def _is_stdlib(self) -> bool:
        from .link import STDLIB
        return self.file != "<string>" and Path(self.file).resolve().parent == STDLIB.resolve()

    def _require_sources(self, sources) -> None:
        """Library recipes have placeholder paths: their data must come from --source."""
        if self._is_stdlib():
            missing = [s.name for s in self.recipe.sources if s.name not in (sources or {})]
            if missing and sources:
                self.source_paths(sources)  # a misspelt name: say that, not only what is missing
            if missing:
                raise UserError(f"stdlib:{Path(self.file).stem} reads its data from a source you give: "
                                + " ".join(f"--source {m}=FILE" for m in missing) + " (command line) or sources={"
                                + ", ".join(f'"{m}": FILE' for m in missing) + "} (Python)")

    def plan(self, params=None, sources=None, probe=False, model_cache=None, head=None):
        """The plan; with `probe`, endpoints asked for what the recipe leaves undeclared are
        probed first (one tiny request each, remembered for a day), and a missing
        capability is an error on the model's line."""
        self._require_sources(sources)
        from .plan import build_plan
        from .runtime.resolve import identity
        c = self.check(params, sources)
        if probe:
            self._probe(c, model_cache)
        return build_plan(c, self.source_paths(sources, params), identity, head=_head(head))

    def _probe(self, c, model_cache) -> None:
        from .runtime.probe import probe_diagnostics
        found = probe_diagnostics(c, Path(model_cache) if model_cache else None)
        raise_if_errors(found)

    def run(self, params=None, sources=None, out="out", cache_dir=".recipe", quiet=True, runtime=None,
            model_cache=None, engine="duckdb", address=None, replicas=1, keep=(), head=None, fail_fast=False):
        """Run the recipe. `cache_dir`: this project's step cache; `model_cache`: converted
        weights and model results (default: the per-user cache, see runtime.user_cache_dir).
        `engine`: "duckdb" (one machine) or "ray" (a local Ray instance, or the cluster at
        `address`: "auto" or ray://HOST:10001; `replicas`: actors per model by default);
        `keep`: nodes to run even where no sink needs them; `head`: each source reads only its
        first `head` records (a trial run; a source's own `head=` wins); `fail_fast`: the first
        unmet expectation stops the run as soon as its node is finished, before later steps
        and the outputs (raises `UnmetExpectations`; not on a `head` trial, which says them)."""
        if engine not in ("duckdb", "ray"):
            raise UserError(f"unknown engine `{engine}`; engines: duckdb, ray")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
            raise UserError(f"replicas={replicas!r}: give a whole number of actors per model, at least 1")
        from .engine.run import Reporter, check_out_dir, execute
        from .engine.store import Store
        self._require_sources(sources)
        out_dir = Path(out)
        check_out_dir(out_dir)
        reporter = Reporter(quiet)
        c = self.check(params, sources)
        for d in c.diagnostics:
            from .diagnostics import render
            reporter.log(render(d, {self.file: self.text}))
        self._probe(c, model_cache)
        from .plan import build_plan
        from .runtime.resolve import identity
        plan = build_plan(c, self.source_paths(sources, params), identity, tuple(keep), _head(head))
        if engine == "ray":
            from .engine.ray_store import RayStore
            store = RayStore(cache_dir, address)
        else:
            store = Store(cache_dir)
        holder = {"rt": runtime}

        def runtime_factory():
            if holder["rt"] is None:
                from .runtime import ModelRuntime
                holder["rt"] = ModelRuntime(cache_dir=model_cache, log=reporter.log)
            if engine == "ray" and not holder.get("pooled"):
                # model calls go to actors (same caches); the driver keeps tokenizers
                from .engine.ray_models import ModelPool
                holder["rt"], holder["pooled"] = ModelPool(holder["rt"], replicas, reporter.log), True
            return holder["rt"]
        try:
            extra = {"recipe": self.recipe.name, "recipe_hash": self.hash(c.params),
                     "recipe_file": self.file, "recipe_text": self.text,
                     "params": c.params,
                     "inputs": {s.name: source_entry(s.args["path"], s.parts["data"], plan.source_files.get(s.name, []))
                                for s in plan.steps if s.op == "read"},
                     "models": {k: {"kind": v["kind"], "source": v["source"], "identity": v["identity"]}
                                for k, v in plan.models.items()},
                     "versions": versions(), "engine": engine}
            from .ops import plugin_of
            used = {s.op: plugin_of(s.op) for s in plan.steps}
            if any(used.values()):  # operators from plugin packages: which, and at what version
                extra["plugins"] = {op: v for op, v in sorted(used.items()) if v}
            reporter.log(f"running {self.recipe.name} ({len(plan.steps)} steps) into {out_dir}")
            def release(name):
                if holder["rt"] is not None:
                    holder["rt"].release(plan.models[name])
            def finish(manifest):
                if holder["rt"] is not None:
                    manifest["model_runtime"] = holder["rt"].stats()
            res = execute(plan, store, out_dir, reporter, runtime_factory, extra, release, finish,
                          fail_fast=fail_fast and head is None)
            if "model_runtime" in res.manifest:
                reporter.models(res.manifest["model_runtime"])
            return Result(res, plan, Path(cache_dir))
        finally:
            store.close()

    def hash(self, params: dict) -> str:
        return hashlib.sha256((self.linked.dumps() + json.dumps(params, sort_keys=True)).encode()).hexdigest()


class Result:
    """A finished run: the manifest, and each node's rows as Arrow, a DuckDB relation or pandas."""

    def __init__(self, res, plan, cache_dir: Path):
        self.out_dir, self.manifest, self.steps = res.out_dir, res.manifest, res.steps
        self.plan, self.cache_dir = plan, cache_dir

    @property
    def unmet(self) -> list[dict]:
        """The recipe's expectations that the run's rows do not meet (`expect NODE: ...`)."""
        return [e for e in self.manifest.get("expectations", []) if not e["ok"]]

    def table(self, node: str):
        """The rows of a node (or source) as an Arrow table, in the node's order."""
        import duckdb
        from .engine.store import Store
        from .engine.tables import arrow_of
        if node not in self.plan.node_step:
            raise KeyError(f"no node `{node}` in this run; nodes: {', '.join(sorted(self.plan.node_step))}")
        step = self.plan.step(self.plan.node_step[node])
        if self.manifest.get("engine") == "ray":
            from .engine.ray_table import RayTable
            t = RayTable(self.cache_dir / "ray" / f"t_{step.fingerprint[:24]}")
            return t.arrow(t.columns())
        con = duckdb.connect(str(self.cache_dir / "cache.duckdb"), read_only=True)
        try:
            return arrow_of(con.execute(f'SELECT * EXCLUDE (_row) FROM "{Store.table(step.fingerprint)}" ORDER BY _row'))
        finally:
            con.close()


    def relation(self, node: str):
        """The rows of a node as a DuckDB relation (`.filter(...)`, `.aggregate(...)`, SQL),
        over the Arrow table `table` returns, on a connection of its own: nothing holds the
        step cache open, so the next run in this process can write it."""
        import duckdb
        return duckdb.connect().from_arrow(self.table(node))

    def to_pandas(self, node: str):
        """The rows of a node as a pandas DataFrame (`pip install recipe[pandas]`)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise UserError("to_pandas() needs pandas: pip install 'recipe[pandas]' (or use .table(), an Arrow table)")
        return self.table(node).to_pandas()


def _head(head):
    if head is not None and (not isinstance(head, int) or isinstance(head, bool) or head < 1):
        raise UserError(f"head={head!r}: give a whole number of records, at least 1")
    return head


def versions() -> dict:
    """The installed versions the manifest records (those not installed left out)."""
    from .codehash import package_versions
    found = package_versions("recipe", "duckdb", "pyarrow", "lark", "numpy", "torch", "transformers",
                             "sentence-transformers", "faiss-cpu")
    return {k: v for k, v in found.items() if v is not None}


def load(path_or_text: str) -> Loaded:
    """Load a recipe from a file, `stdlib:NAME`, or recipe text (anything with a newline)."""
    if "\n" in path_or_text or path_or_text.lstrip().startswith("recipe "):
        return Loaded(parse_any(path_or_text, "<string>"), path_or_text, "<string>")
    recipe, text = load_file(path_or_text)
    return Loaded(recipe, text, recipe.file)
