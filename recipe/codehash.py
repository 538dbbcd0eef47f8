"""What code a step ran: a hash of the package version and of the source of every module
of this package that an operator's module imports (transitively, lazy imports included),
so an upgraded algorithm cannot be served from a step cached by the old one."""
from __future__ import annotations

import ast
import hashlib
import re
import unicodedata
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PKG = Path(__file__).resolve().parent


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return PKG / "__init__.py"
    rel = Path(*parts)
    for p in (PKG / rel.with_suffix(".py"), PKG / rel / "__init__.py"):
        if p.is_file():
            return p
    return None


# the start of an import statement at the start of a line (lazy imports inside functions
# included); a docstring line that reads like one only adds a dependency
_IMPORT = re.compile(r"^[ \t]*(?=from[ \t]+[\w.]+[ \t]+import\b|import[ \t])", re.M)


def import_statements(source: str) -> list:
    """The import statements of a module's source, as AST nodes. Parses only the lines that
    start one, each with the lines after it until it parses (a parenthesised list of names,
    whose comments may hold parentheses); parsing whole modules took 1.2 s for the package
    at every start of a run. tests/test_trust.py checks that this finds what a walk of the
    whole syntax tree finds in every module of the package."""
    out = []
    for m in _IMPORT.finditer(source):
        end = source.find("\n", m.end())
        end = len(source) if end < 0 else end
        while True:
            try:
                out += ast.parse(source[m.end():end]).body
                break
            except SyntaxError:  # a statement going on, or prose that begins like an import
                nxt = source.find("\n", end + 1)
                if nxt < 0 or "(" not in source[m.end():end] or end - m.end() > 4000:
                    break
                end = nxt
    return out


@lru_cache(maxsize=None)
def _imports(name: str) -> tuple[str, ...]:
    """Modules of this package that module `name` imports (at any depth of its code)."""
    path = _module_file(name)
    if path is None:
        return ()
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in import_statements(path.read_text(encoding="utf-8")):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "recipe":
                continue
            if node.module:  # `from . import x` imports x, not the package's own code
                out.add(mod)
            for a in node.names:  # `from . import x` names a module
                if _module_file(f"{mod}.{a.name}"):
                    out.add(f"{mod}.{a.name}")
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "recipe")
    return tuple(sorted(m for m in out if _module_file(m)))


@lru_cache(maxsize=None)
def source_hash(*modules: str) -> str:
    """Hash of exactly these modules' sources (no version, no imports followed)."""
    h = hashlib.sha256()
    for m in modules:
        h.update(m.encode() + b"\0" + _module_file(m).read_bytes() + b"\0")
    return h.hexdigest()[:16]


# Code every step of a kind runs through beside its operator's module, which never imports
# it: the engines' readers and table implementations (an operator's kernels run through
# them, on either engine, and both engines' steps share fingerprints), and the model
# runtime's backends (for steps that call models).
ENGINE = ("recipe.engine.read", "recipe.engine.duck", "recipe.engine.ray_read", "recipe.engine.ray_table")
RUNTIME = ("recipe.runtime", "recipe.runtime.hf", "recipe.runtime.batching", "recipe.runtime.local",
           "recipe.runtime.endpoint", "recipe.runtime.fasttext_lid")


@lru_cache(maxsize=None)
def plugin_hash(module: str) -> str:
    """Hash of a plugin operator's code (a module outside this package): every Python file of
    its top-level package (or the module's own file), and the version of the distribution that
    installed it, so an upgraded or edited plugin re-runs the steps it cached."""
    import importlib.util
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    h = hashlib.sha256(module.encode())
    files: list[Path] = []
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            files += sorted(Path(loc).rglob("*.py"))
    elif spec is not None and spec.origin and spec.origin.endswith(".py"):
        files.append(Path(spec.origin))
    for f in files:
        h.update(str(f.name).encode() + b"\0" + f.read_bytes() + b"\0")
    dists = metadata.packages_distributions().get(top, [])
    for d in sorted(dists):
        h.update(f"{d}=={package_versions(d).get(d)}".encode())
    return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def package_versions(*names: str) -> dict[str, str | None]:
    """Each installed distribution's version, None where it is not installed (read once a
    process: the modules it runs are the ones first loaded)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@lru_cache(maxsize=None)
def code_hash(*modules: str) -> str:
    """Hash of the package version and the sources `modules` depend on."""
    seen: set[str] = set()
    stack = list(modules)
    while stack:
        m = stack.pop()
        if m in seen:
            continue
        seen.add(m)
        stack += _imports(m)
    h = hashlib.sha256()
    try:
        h.update(metadata.version("recipe").encode())
    except metadata.PackageNotFoundError:
        h.update(b"?")
    # the Unicode tables of the running Python: text normalisation lower-cases and finds
    # whitespace with them (exact dedupe's keys, MinHash's shingles), so a step cached under
    # another Python version's Unicode must run again
    h.update(unicodedata.unidata_version.encode())
    for m in sorted(seen):
        h.update(m.encode() + b"\0" + _module_file(m).read_bytes() + b"\0")
    return h.hexdigest()[:16]
