"""The layering, checked: every module imports only modules of its own stage or earlier ones,
and operators and algorithms never import the engine."""
import importlib
from pathlib import Path

from recipe.codehash import _imports

PKG = Path(__file__).resolve().parents[1] / "recipe"

# stage of each module (by longest matching prefix): a module may import its own stage or lower
STAGES = [
    (0, ["recipe.codes", "recipe.diagnostics", "recipe.ir", "recipe.syntax", "recipe.types", "recipe.faults", "recipe.codehash", "recipe.ui",
         "recipe.paths", "recipe.digests"]),
    (1, ["recipe.table", "recipe.models", "recipe.model_files"]),
    (1, ["recipe.algorithms", "recipe.io", "recipe.templates", "recipe.compiled"]),
    (2, ["recipe.frontend", "recipe.link", "recipe.ops", "recipe.check", "recipe.checked", "recipe.check_io", "recipe.check_models", "recipe.check_regex", "recipe.check_types", "recipe.check_names", "recipe.check_expect",
         "recipe.schema"]),
    (3, ["recipe.plan", "recipe.runtime"]),
    (4, ["recipe.engine", "recipe.explain", "recipe.report", "recipe.manifest"]),
    (5, ["recipe.api", "recipe.cli", "recipe.diff", "recipe.evaluate", "recipe.__main__", "recipe"]),
]


def stage(mod: str) -> int:
    best = (-1, 5)
    for rank, prefixes in STAGES:
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best[0]:
                best = (len(p), rank)
    return best[1]


def modules() -> list[str]:
    out = []
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG.parent).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out.append(".".join(parts))
    return out


def test_every_module_imports():
    for m in modules():
        if m != "recipe.__main__":  # running it is the command line
            importlib.import_module(m)


def test_no_module_imports_a_later_stage():
    bad = []
    for m in modules():
        for dep in _imports(m):
            if stage(dep) > stage(m):
                bad.append(f"{m} (stage {stage(m)}) imports {dep} (stage {stage(dep)})")
            if m.startswith(("recipe.ops", "recipe.algorithms")) and dep.startswith(("recipe.engine", "recipe.api")):
                bad.append(f"{m} imports the engine: {dep}")
    assert not bad, "\n".join(bad)


def test_kernels_never_touch_duckdb():
    """Operators and algorithms reach rows only through the table interface (recipe/table.py),
    so another engine can run them."""
    bad = [str(f.relative_to(PKG.parent)) for d in ("ops", "algorithms") for f in (PKG / d).rglob("*.py")
           if "duckdb" in f.read_text() or "rowid" in f.read_text()]
    assert not bad, bad
