"""`recipe report`: one self-contained HTML page about a finished run (collect.py gathers the
facts from the run's folder and step cache; render.py draws them with Plotly)."""
from __future__ import annotations

from pathlib import Path

from .collect import collect
from .render import render


def write_report(out: Path, cache_dir: Path | None, to: Path | None = None, model_cache: Path | None = None) -> Path:
    """Write the report of the run in `out` (with its step cache, when given and still
    there; `model_cache`: the run's --model-cache, for cached embeddings) to `to` (default:
    `out`/report.html); returns the path written."""
    facts = collect(Path(out), Path(cache_dir) if cache_dir else None, model_cache)
    path = Path(to) if to else Path(out) / "report.html"
    from ..faults import atomic_file
    with atomic_file(path, "w") as fh:
        fh.write(render(facts))
    return path
