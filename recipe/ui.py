"""The terminal: progress bars for long steps, the run summary and the model table (rich, on
stderr), quiet in tests and when asked."""
from __future__ import annotations

import os
import time


def shown_value(v) -> str:
    """A measured value in a line of text: floats to 4 significant digits, ints grouped,
    true/false and null as a recipe writes them."""
    if isinstance(v, bool) or v is None:
        return "null" if v is None else str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def expectation_values(e: dict) -> str:
    """An expectation result's values as a line says them: `rows() = 5, ...`; of a grouped one,
    how many groups missed it and the first of those with theirs."""
    def vals(d):
        return ", ".join(f"{k} = {shown_value(v)}" for k, v in d.items())
    if not e.get("by"):
        return vals(e["values"])
    if e["ok"]:
        return f"every one of {e['groups']:,} groups"
    miss = "; ".join(f"{group_text(g['group'])}: {vals(g['values'])}" for g in e["not_met"][:3])
    more = e["groups_not_met"] - min(3, len(e["not_met"]))
    return f"not met in {e['groups_not_met']:,} of {e['groups']:,} groups: {miss}" + (f"; {more:,} more" if more else "")


def group_text(g) -> str:
    """A group's value as a line says it; of several columns, `(davinci, math)`."""
    return f"({', '.join(shown_value(v) for v in g)})" if isinstance(g, list) else shown_value(g)


def expectation_text(e: dict) -> str:
    """`expect NODE [by COLUMN, ...]: CONDITION` (of a result, or of a plan's expectation,
    whose `by` is a list of columns)."""
    by = e.get("by")
    by = ", ".join(by) if isinstance(by, list) else by
    return f"expect {e['node']}" + (f" by {by}" if by else "") + f": {e['expect']}"


def n_rows(n: int) -> str:
    """`1 row`, `12,437 rows`."""
    return f"{n:,} row" + ("" if n == 1 else "s")


class Reporter:
    """Progress and summary output; quiet in tests, rich on a terminal."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._console = None
        if not quiet:
            from rich.console import Console
            self._console = Console(stderr=True)
            if not self._console.is_terminal and "COLUMNS" not in os.environ:
                self._console.width = 120  # a log file: tables not squeezed into 80 columns

    def log(self, msg: str) -> None:
        if not self.quiet:
            self._console.print(msg, highlight=False, markup=False, soft_wrap=True)  # a log file keeps whole lines

    def progress(self, step: str):
        if self.quiet:
            return _NullProgress()
        if not self._console.is_terminal:  # a log file: a line now and then, not a bar
            return _LineProgress(step, self.log)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        return _RichProgress(Progress(TextColumn(f"[bold]{step}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                      console=self._console, transient=True))

    def models(self, stats: dict) -> None:
        if self.quiet or not stats:
            return
        from rich.table import Table
        t = Table(title="models (shared by every step that uses them)")
        for c in ("model", "loads", "requests", "cache hits", "computed", "tokens", "seconds"):
            t.add_column(c, justify="left" if c == "model" else "right", overflow="fold")
        for name, v in stats.items():
            t.add_row(name, str(v["loads"]), str(v["requests"]), str(v["cache_hits"]), str(v["computed"]),
                      str(v["tokens"]), f"{v['seconds'] + v['load_seconds']:.1f}")
        self._console.print(t)

    def stats(self, rows: list[dict]) -> None:
        """Statistics operators report (tag diversity and complexity, score ranges, ...)."""
        if self.quiet:
            return
        for r in rows:
            # the warning is said under the table; keys sorted: a cached step's info comes back
            # from the cache with its keys sorted, and a run reads the same either way
            info = {k: v for k, v in sorted((r.get("info") or {}).items()) if k != "warning"}
            flat = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
            for k, v in info.items():
                if isinstance(v, dict) and all(isinstance(x, (int, float)) for x in v.values()):
                    flat[k] = ", ".join(f"{a} {b:g}" for a, b in sorted(v.items()))
            if flat:
                self.log(f"  {r['name']}: " + "; ".join(f"{k} {v}" for k, v in sorted(flat.items())))

    def summary(self, rows: list[dict]) -> None:
        if self.quiet:
            return
        from rich.table import Table
        t = Table(title="run summary")
        for c in ("step", "op", "in", "created", "out", "set aside", "seconds", "cached"):
            t.add_column(c, justify="right" if c not in ("step", "op") else "left")
        for r in rows:
            t.add_row(r["name"], r["op"], str(r["rows_in"]), str(r["rows_created"]), str(r["rows_out"]),
                      str(r["rows_set_aside"]), f"{r['seconds']:.2f}", "yes" if r["cached"] else "")
        self._console.print(t)
        for r in rows:  # said again under the table, where a reader of the run looks last
            if (r.get("info") or {}).get("warning"):
                self.log(f"warning: {r['name']}: {r['info']['warning']}")


class _NullProgress:
    def __enter__(self):
        return lambda done, total: None

    def __exit__(self, *a):
        return False


class _LineProgress:
    """Progress as a log line at most every `every` seconds: long steps written to a file
    (nohup, CI) still say how far they are and how long is left."""

    def __init__(self, step: str, log, every: float = 30.0):
        self.step, self.log, self.every = step, log, every

    def __enter__(self):
        t0 = time.time()
        last = [t0]

        def update(done, total):
            now = time.time()
            if now - last[0] < self.every or not done:
                return
            last[0] = now
            rate = done / max(1e-9, now - t0)
            left = f", about {(total - done) / rate:,.0f} s left" if total and total > done else ""
            self.log(f"  {self.step}: {done:,}/{total:,} ({rate:,.1f}/s{left})" if total
                     else f"  {self.step}: {done:,} ({rate:,.1f}/s)")
        return update

    def __exit__(self, *a):
        return False


class _RichProgress:
    def __init__(self, p):
        self.p, self.task, self.t0 = p, None, time.time()

    def __enter__(self):
        self.p.__enter__()
        self.task = self.p.add_task("", total=None, rate="")

        def update(done, total):
            rate = done / max(1e-9, time.time() - self.t0)
            self.p.update(self.task, completed=done, total=total, rate=f"{rate:,.1f} rows/s")
        return update

    def __exit__(self, *a):
        return self.p.__exit__(*a)
