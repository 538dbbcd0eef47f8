"""`recipe cache`: the project's step cache (its steps, kept or stale; `--prune`) and, with
`--models`, the model cache shared by every project (weight folders and results)."""
from __future__ import annotations

from pathlib import Path

from .diagnostics import UserError


def weights_dir(a) -> Path:
    """Where a run with these options keeps converted and fine-tuned weights (the model cache)."""
    from .runtime import user_cache_dir
    return Path(a.model_cache) if getattr(a, "model_cache", None) else user_cache_dir() / "models"


def cmd_cache(a) -> int:
    if a.models:
        return _model_cache(a)
    from .engine.prune import inspect
    try:
        rep = inspect(a.cache_dir, prune=a.prune)
    except FileNotFoundError:
        raise UserError(f"no cache directory at {a.cache_dir}")
    if not rep.steps and not rep.orphans:
        print(f"{a.cache_dir}: empty ({_mb(rep.bytes_before)})")
        _model_cache_line()
        return 0
    width = max(len(s.name) for s in rep.steps) if rep.steps else 4
    for s in sorted(rep.steps, key=lambda s: (s.engine, not s.keep, s.name)):
        mark = "kept" if s.keep else ("removed" if a.prune else "stale")
        print(f"  {s.engine:<6} {s.name:<{width}}  {s.op:<15} {s.rows_out:>10,} rows {s.seconds:>8.1f} s  {mark}")
    stale = len(rep.removed)
    left = f"; {rep.orphans} left by killed runs" if rep.orphans else ""
    if a.prune:
        after = f", now {_mb(rep.bytes_after)}" if rep.bytes_after is not None else ""
        print(f"{a.cache_dir}: removed {stale} step(s){left}; was {_mb(rep.bytes_before)}{after}")
    else:
        print(f"{a.cache_dir}: {len(rep.steps)} step(s), {_mb(rep.bytes_before)}; {stale} not any step name's "
              f"latest run nor read by one{left}" + ("; `recipe cache --prune` removes them" if stale or rep.orphans else ""))
    _model_cache_line()
    return 0


def _model_cache_line() -> None:
    """The shared model cache grows too; say where it is and how large, not what to delete."""
    from .engine.prune import folder_bytes
    from .runtime import user_cache_dir
    d = user_cache_dir()
    if d.is_dir():
        print(f"model cache (shared by every project): {d}, {_mb(folder_bytes(d))}; `recipe cache --models` lists "
              f"its weights and prunes those no run has loaded for a while (deleting any of it only costs time: "
              f"results, converted weights and fine-tuned models are made again when a run needs them)")


def _model_cache(a) -> int:
    """`recipe cache --models`: the weight folders (what each was made from, its size, when a
    run last loaded it) and the results; with --prune, the folders unused --older-than days."""
    import datetime
    from .runtime import weights_store as ws
    root = weights_dir(a)
    if not root.is_dir():
        print(f"{root}: no model cache yet")
        return 0
    if a.prune:
        gone, tmp = ws.prune(root, a.older_than)
        freed = sum(e.bytes for e in gone)
        for e in gone:
            print(f"  removed {e.kind} {e.path.relative_to(root)}: {e.made_from}")
        left = f"; {len(tmp)} folder(s) left by killed runs" if tmp else ""
        print(f"{root}: removed {len(gone)} weight folder(s) unused for {a.older_than:g}+ days ({_mb(freed)}){left}; "
              f"a run that needs one makes it again")
        return 0
    day = lambda t: datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")  # noqa: E731
    items = ws.entries(root)
    for e in items:
        print(f"  {e.kind:<10} {_mb(e.bytes):>11}  last loaded {day(e.last_used)}  {e.path.relative_to(root)}  "
              f"{e.made_from}")
    n, emb, size = ws.results_summary(root)
    print(f"  results    {_mb(size):>11}  {n:,} scores and generations, {emb:,} embeddings")
    tmp = ws.leftovers(root)
    if tmp:
        print(f"  {len(tmp)} folder(s) left by killed conversions or trainings: {', '.join(p.name for p in tmp)}")
    print(f"{root}: {len(items)} weight folder(s), {_mb(sum(e.bytes for e in items))}; `recipe cache --models "
          f"--prune [--older-than DAYS]` removes those no run has loaded for 30 days (or DAYS)")
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"
