"""Checks of a recipe's sources and sinks: their options, input formats, and where sinks write."""
from __future__ import annotations

import json
import re

from .checked import Checked, value_of
from .diagnostics import Diagnostic, column_hint, did_you_mean
from .syntax import field_path

SOURCE_OPTIONS = {"format": "the row format (detected when not given)", "id": "a column of unique row ids",
                  "columns": "a CSV/TSV file without a header row: the name of each field, in order",
                  "head": "read only the first N records (a trial run; `recipe run --head N` sets it on every source)",
                  "branches": "OASST trees: `best` (the top-ranked reply at each turn, a row a tree; the default) or "
                              "`all` (a row for each path from the prompt to a last reply)"}
SINK_OPTIONS = {"format": "the row format written", "columns": "columns to write (jsonl) or to carry along (other formats)",
                "column": "tag_counts: the list column counted",
                "shards": "write the rows as this many files (`train-00000-of-00004.parquet`, ...), in order",
                "shard_rows": "write the rows as files of at most this many rows each, in order"}


def options_of(c: Checked, what: str, options, known: dict) -> dict:
    out = {}
    for a in options:
        if a.name not in known:
            c.diagnostics.append(Diagnostic("E0901", f"`{what}` has no option `{a.name}`", a.span,
                                            did_you_mean(a.name, known) or (f"options: {', '.join(known)}",)))
            continue
        out[a.name] = (a, value_of(a.value, c.params))
    return out


def _check_shards(c: Checked, opts: dict, fmt: str | None) -> None:
    """`shards` and `shard_rows`: a whole number, one of the two, and rows to split."""
    given = [k for k in ("shards", "shard_rows") if k in opts]
    for k in given:
        a, v = opts[k]
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            c.diagnostics.append(Diagnostic("E0907", f"`{k}` must be a whole number, at least 1", a.value.span,
                                            ("e.g. shards=4, or shard_rows=500000",)))
    if len(given) == 2:
        c.diagnostics.append(Diagnostic("E0907", "`shards` and `shard_rows` both size the files: give one",
                                        opts["shard_rows"][0].span, ("shards=N makes N files; shard_rows=N files of N rows",)))
    if given and fmt == "tag_counts":
        c.diagnostics.append(Diagnostic("E0907", "`tag_counts` writes one JSON document: it has no shards",
                                        opts[given[0]][0].span, ("remove the option",)))


def check_sources(c: Checked) -> None:
    from .io.formats import FORMATS
    for s in c.recipe.sources:
        opts = options_of(c, "read", s.options, SOURCE_OPTIONS)
        if "format" in opts:
            a, v = opts["format"]
            if v not in FORMATS:
                c.diagnostics.append(Diagnostic("E0902", f"unknown input format `{v}`", a.value.span,
                                                did_you_mean(str(v), FORMATS) or (f"formats: {', '.join(FORMATS)}",)))
        if "branches" in opts:
            a, v = opts["branches"]
            fmt = opts.get("format", (None, None))[1]
            if v not in ("best", "all"):
                c.diagnostics.append(Diagnostic("E0907", "`branches` is `best` or `all`", a.value.span,
                                                ('branches="all": every conversation of an OASST tree; "best": its top-ranked one',)))
            elif fmt is not None and fmt != "oasst":
                c.diagnostics.append(Diagnostic("E0907", f"`branches` chooses among an OASST tree's replies; format `{fmt}` has none",
                                                a.span, ('remove it, or read the file with format="oasst"',)))
        if "columns" in opts:
            a, v = opts["columns"]
            if not (isinstance(v, list) and v and all(isinstance(x, str) and x.strip() for x in v)):
                c.diagnostics.append(Diagnostic("E0907", "`columns` must be a list of field names", a.value.span,
                                                ('e.g. columns=["instruction", "output"]',)))
            elif len(set(v)) != len(v):
                twice = sorted({x for x in v if v.count(x) > 1})
                c.diagnostics.append(Diagnostic("E0907", f"`columns` names {', '.join(f'`{x}`' for x in twice)} twice",
                                                a.value.span, ("each field needs its own name",)))
        if "head" in opts:
            a, v = opts["head"]
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                c.diagnostics.append(Diagnostic("E0907", "`head` must be a whole number of records, at least 1",
                                                a.value.span, ("e.g. head=500: the first 500 records of the source",)))
        err = c.source_errors.get(s.name)
        doubt = c.source_headers.get(s.name)
        if err and doubt and "cannot tell the format" in err and "columns" not in opts:
            # the header row is the first record (FLAN's CoT TSVs): its "keys" were sentences
            why, fields = doubt
            c.diagnostics.append(Diagnostic("E0903", f"{why}: the file seems to have no header row", s.path.span,
                                            (f"name its {fields} fields by what they hold, and the first line is a record: "
                                             f"a format's names read as that format (`columns=[\"question\", \"answer\", "
                                             f"...]`: question_answer; `instruction`, `input`, `output`: alpaca), other "
                                             f"names need format=\"raw\" and a derive(instruction = ..., response = ...)",)))
        elif err:
            c.diagnostics.append(Diagnostic("E0903", err, s.path.span,
                                            (_read_hint(err, "format" in opts, s.name in c.sources_given),)))
        splits = c.source_splits.get(s.name)
        if splits:  # a Hub dataset's folder read whole: its test split becomes training data
            c.diagnostics.append(Diagnostic(
                "W0905", f"the files of this source belong to several dataset splits ({', '.join(splits)}); "
                         f"all are read", s.path.span,
                (f"read one split's files: a glob of its shards (`.../{'train' if 'train' in splits else splits[0]}-*`, "
                 f"with the files' extension) or its folder",),
                severity="warning"))
        if doubt and not err and "columns" not in opts:
            why, fields = doubt
            names = ", ".join(json.dumps(f"f{i}") for i in range(1, fields + 1))
            c.diagnostics.append(Diagnostic(
                "W0906", why, s.path.span,
                (f"if the file has no header row, name its {fields} fields: columns=[{names}] "
                 f"(its first line is then a record)",), severity="warning"))
        note = c.source_notes.get(s.name)
        if note:  # the run would read nothing from it (or little): most often a format that is not the file's
            fmt = opts.get("format", (None, None))[1]
            missing = re.search(r"missing field `([^`]+)`", note)
            named = opts.get("columns", (None, None))[1]
            if missing and isinstance(named, list) and missing.group(1) not in named:
                hint = (f"`columns` names no `{missing.group(1)}`: name the field that holds it so "
                        f"(columns=[{', '.join(json.dumps(x) for x in named)}] now)")
            elif fmt:
                hint = f'format="{fmt}" is given: is it the file\'s format? (without it, the format is detected)'
            else:
                hint = "check the file, or name its format with format=..."
            c.diagnostics.append(Diagnostic("W0903", note, s.path.span, (hint,), severity="warning"))


def _read_hint(err: str, format_given: bool = False, given: bool = False) -> str:
    """The hint for a source that cannot be read: the path when no file was found, else the file.
    `given`: the path came from outside (--source, --set, Python), so it is the working
    directory's, not the recipe file's."""
    if "input is empty" in err:
        return "the file has no rows: check the path, or that whatever wrote it finished"
    if "cannot tell the format" in err:
        return ('name the format: read("...", format="alpaca"), or format="raw" for every field as a column, '
                f'then {_pair_derive(err)} makes the conversation; '
                'a CSV/TSV file without a header row needs columns=[...]')
    if "DatasetDict" in err or "save_to_disk" in err:
        return "a Hugging Face dataset saved with save_to_disk: point the source at the folder of one split"
    if any(w in err for w in ("not found", "no readable file", "is a directory", "unknown file type")):
        if given:
            import os
            return f"check the path given from outside (--source, --set): it is relative to the working directory, {os.getcwd()}"
        return "check the path (relative to the recipe file), or give --source NAME=PATH"
    return "check the file's contents" + ("" if format_given else ", or name its format with format=...")


_ASKS = ("input", "inputs", "prompt", "question", "query", "instruction", "source", "src", "text")
_ANSWERS = ("output", "outputs", "response", "answer", "target", "targets", "completion", "tgt", "label")


def _pair_derive(err: str) -> str:
    """`derive(instruction = X, response = Y)` with the file's fields that look like a prompt
    and its answer (UIT's `Input`/`Output`), else with placeholders."""
    import re
    keys = re.findall(r"`([^`]+)`", err.split("from keys", 1)[1]) if "from keys" in err else []
    ask = next((k for k in keys if k.lower() in _ASKS), "FIELD")
    answer = next((k for k in keys if k.lower() in _ANSWERS and k != ask), "FIELD")
    return f"`derive(instruction = {ask}, response = {answer})`"


RUN_FILES = ("manifest.json", "set_aside.jsonl", "report.html")  # what a run (and `recipe report`) writes in --out


def check_sinks(c: Checked) -> None:
    import os.path
    from pathlib import PurePosixPath
    from .io.sinks import SINK_EXTENSIONS, WRITE_FORMATS, sink_extension_problem
    taken: dict[str, str] = {}  # normalised sink path -> the node written there first
    for s in c.recipe.sinks:
        opts = options_of(c, "write", s.options, SINK_OPTIONS)
        fmt = opts["format"][1] if "format" in opts else None
        if fmt is not None and fmt not in WRITE_FORMATS:
            c.diagnostics.append(Diagnostic("E0904", f"cannot write format `{fmt}`", opts["format"][0].value.span,
                                            did_you_mean(str(fmt), WRITE_FORMATS) or (f"formats: {', '.join(WRITE_FORMATS)}",)))
            fmt = None
        _check_shards(c, opts, fmt)
        path = value_of(s.path, c.params)
        if not isinstance(path, str):
            continue
        p = PurePosixPath(path.replace("\\", "/"))
        if not path.strip() or p.is_absolute() or ".." in p.parts or path.startswith("~"):
            c.diagnostics.append(Diagnostic("E0905", f"sink path `{path}` must be a relative path inside --out",
                                            s.path.span, ("outputs are written only under --out; drop the leading `/` or `..`",)))
            continue
        where = os.path.normpath(path.replace("\\", "/"))
        if where in RUN_FILES:
            c.diagnostics.append(Diagnostic("E0908", f"sink path `{path}` is a file the run writes itself", s.path.span,
                                            (f"{', '.join(RUN_FILES)} in --out are the run's; choose another name",)))
        elif where in taken:
            c.diagnostics.append(Diagnostic("E0908", f"`{path}` is written twice (also by `write {taken[where]}`)",
                                            s.path.span, ("the second would overwrite the first: give each its own file",)))
        taken.setdefault(where, s.input.name)
        problem = sink_extension_problem(path, fmt or "jsonl")
        if problem:
            c.diagnostics.append(Diagnostic("E0906", problem, s.path.span,
                                            (f"extensions: {', '.join(SINK_EXTENSIONS)} (all but .parquet optionally "
                                             f"compressed: .gz, .bz2, .xz, .zst)",)))
        known = c.columns.get(s.input.name)
        if "columns" in opts and known is not None and isinstance(opts["columns"][1], list):
            for col in opts["columns"][1]:
                if col not in known and col != "_id":
                    got = field_path(col, known)  # a field of a nested value: a column once derived
                    c.diagnostics.append(Diagnostic("E0401", f"column `{col}` does not exist in `{s.input.name}`",
                                                    opts["columns"][0].value.span,
                                                    (f"a field of a nested value is a column once derived: "
                                                     f"`derive({got[1][-1]} = {col})` before the write",) if got
                                                    and not got[1][-1].isdigit() else column_hint(col, known)))
