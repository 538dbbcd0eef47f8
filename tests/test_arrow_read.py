"""The Arrow fast path for Alpaca JSON lines writes the same bytes as the line-by-line reader,
on generated files: extra columns of every kind (types changing between chunks, columns that
appear late or hold only nulls), broken lines, blank lines and rows the reader sets aside."""
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import recipe.engine.read as read_mod
import recipe.engine.tables as tables_mod
import recipe.io.arrow_alpaca as fast_mod
from recipe.api import load

PLAIN = st.one_of(st.none(), st.integers(-5, 5), st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 2)),
                  st.booleans(), st.text(alphabet="ab é", max_size=4), st.lists(st.sampled_from(["x", "y"]), max_size=3))
VALUES = st.one_of(PLAIN, st.just({"k": 1}), st.just("2023-01-01"))
# mostly rows the fast path takes, so its chunks meet the reader's in every order
CLEAN = st.fixed_dictionaries(
    {"instruction": st.text(alphabet="abc", min_size=1, max_size=4), "output": st.text(alphabet="xyz ", max_size=4)},
    optional={"input": st.one_of(st.sampled_from(["", " ", "q r", "\u00a0"]), st.none()), "c1": PLAIN, "c2": PLAIN,
              "_id": st.text(alphabet="ab:1", max_size=4), "response": st.sampled_from(["x", "xyz"])})
WEIRD = st.fixed_dictionaries(
    {"instruction": st.one_of(st.text(alphabet="abc \u3000", min_size=0, max_size=5), st.just(None), st.just(3)),
     "output": st.one_of(st.text(alphabet="xyz ", max_size=5), st.just(None))},
    optional={"input": st.one_of(st.text(alphabet="q \u00a0", max_size=3), st.none()),
              "c1": VALUES, "c2": VALUES, "_hidden": VALUES, "system": st.just("be brief"),
              # fields named as recipe's own columns: kept as `<name>_in_input` where they differ
              "_id": PLAIN, "id_in_input": PLAIN, "response": st.sampled_from(["x", "z", None]), "__keep": PLAIN,
              # names that are another's in another case: one SQL name (`Instruction_in_input`; `C1` is `c1`)
              "Instruction": PLAIN, "C1": PLAIN, "": PLAIN})
LINE = st.one_of(*[CLEAN.map(json.dumps)] * 6, WEIRD.map(json.dumps),
                 st.sampled_from(["", "{broken", "[1, 2]", "null", '{"instruction": "n", "output": NaN}',
                                  '{"instruction": "half \\ud800 a pair", "output": "x"}']))


def _outputs(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.json"}


def _fast_chunks(m) -> list[int]:
    """The row counts of the chunks that take the fast path from now on (patched via `m`)."""
    taken = []
    real = tables_mod.RowWriter.add_arrow
    m.setattr(tables_mod.RowWriter, "add_arrow", lambda self, t: (taken.append(t.num_rows), real(self, t)))
    return taken


def _both_paths_agree(monkeypatch, tmp, path, slow: str, note: str, chunk: int = 3, fmt: str = "",
                      options: str = "") -> None:
    """The file read by the fast path and then with `read_mod.<slow>` switched off, both in
    `chunk`-row chunks, writes the same bytes (patched per example: hypothesis runs every
    example inside one call of the test function). `options`: more of read's options."""
    how = (f', format="{fmt}"' if fmt else "") + options
    text = (f'recipe t\nsource raw = read("{path}"{how})\n'
            f'write raw to "x.jsonl"\nwrite raw to "y.json" (format="sharegpt")\n')
    with monkeypatch.context() as m:
        m.setattr(fast_mod, "CHUNK", chunk)
        # blocks of a few dozen bytes: most end inside a line, which the next read completes
        m.setattr(fast_mod, "BLOCK", 37)
        m.setattr(tables_mod.RowWriter.__init__, "__defaults__", (chunk, 16_384))
        load(text).run(out=tmp / "fast", cache_dir=tmp / "c1")
        m.setattr(read_mod, slow, lambda *a: None)
        load(text).run(out=tmp / "slow", cache_dir=tmp / "c2")
    assert _outputs(tmp / "fast") == _outputs(tmp / "slow"), note


def _fast_then_slow(monkeypatch, tmp, text: str, slow: str) -> list[int]:
    """Runs `text` in 3-row chunks on the fast path, then with `read_mod.<slow>` switched off;
    returns the row counts of the chunks the fast path took."""
    with monkeypatch.context() as m:
        m.setattr(fast_mod, "CHUNK", 3)
        m.setattr(tables_mod.RowWriter.__init__, "__defaults__", (3, 16_384))
        taken = _fast_chunks(m)
        load(text).run(out=tmp / "fast", cache_dir=tmp / "c1")
        taken = list(taken)
        m.setattr(read_mod, slow, lambda *a: None)
        load(text).run(out=tmp / "slow", cache_dir=tmp / "c2")
    return taken


@pytest.mark.parametrize("chunk", [2, 3])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, min_size=1, max_size=14))
def test_fast_and_line_by_line_reads_agree(ram_tmp, monkeypatch, chunk, lines):
    if not any(line.startswith('{"instruction"') for line in lines):
        lines = ['{"instruction": "first", "output": "row"}'] + lines
    tmp = ram_tmp.mktemp("ar")
    data = tmp / "d.jsonl"
    data.write_text("".join(line + "\n" for line in lines))
    # small chunks on both paths, so schemas change between chunks; the reference is the
    # line-by-line reader, chunked alike (a column widened int -> float -> JSON renders its ints
    # as 0.0 whichever path read them: widening depends on chunking)
    _both_paths_agree(monkeypatch, tmp, data, "_fast", "\n".join(lines), chunk, fmt="alpaca")


@pytest.mark.parametrize("fmt", ["alpaca", "openai"])
def test_the_fast_path_is_taken(tmp_path, monkeypatch, fmt):
    if fmt == "alpaca":
        rows = [{"instruction": f"q{i}", "input": "", "output": "a", "n": i} for i in range(50)]
    else:  # a system turn first and a second user turn: the conversation is kept whole
        rows = [{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"q{i}"},
                              {"role": "assistant", "content": "a"}, {"role": "user", "content": "more"}], "n": i}
                for i in range(50)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    taken = _fast_chunks(monkeypatch)
    res = load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert taken == [50] and res.manifest["sinks"][0]["rows"] == 50
    third = json.loads((tmp_path / "o" / "x.jsonl").read_text().splitlines()[3])
    assert third["instruction"] == "q3" and third["response"] == "a" and third["n"] == 3
    if fmt == "openai":
        assert [m["role"] for m in third["messages"]] == ["system", "user", "assistant", "user"]


def test_a_list_column_meeting_text_keeps_each_value_as_json():
    import duckdb
    con = duckdb.connect()
    w = tables_mod.RowWriter(con, "t", chunk=2)
    for i, v in enumerate([["x", "y"], None, "plain", ["z"]]):
        w.add(f"r{i}", {"messages": [], "instruction": "i", "response": "r", "c": v})
    w.close()
    assert [r[0] for r in con.execute("SELECT c FROM t ORDER BY _row").fetchall()] == \
        [json.dumps(["x", "y"]), None, '"plain"', json.dumps(["z"])]


def test_rows_inserted_in_whole_row_groups_keep_their_order_across_schema_changes():
    """Chunks of 2 rows inserted 3 at a time (a row group), the rows held inserted before a
    column appears and before one widens: every row once, in order, `_row` 0..n-1."""
    import duckdb
    con = duckdb.connect()
    w = tables_mod.RowWriter(con, "t", chunk=2, row_group=3)
    vals = [1, 2, 3, 4, 5, 2.5, 7, 8, "text", 10, 11]
    for i, v in enumerate(vals):
        w.add(f"r{i}", {"messages": [], "instruction": f"i{i}", "response": "r", "c": v,
                        **({"late": i} if i >= 4 else {})})
    w.close()
    rows = con.execute("SELECT _row, _id, late FROM t ORDER BY _row").fetchall()
    assert rows == [(i, f"r{i}", i if i >= 4 else None) for i in range(len(vals))]
    assert [r[0] for r in con.execute("SELECT c FROM t ORDER BY _row").fetchall()] == \
        ["1.0", "2.0", "3.0", "4.0", "5.0", "2.5", "7.0", "8.0", '"text"', "10", "11"]  # int -> float -> JSON


def test_rows_are_stored_in_whole_row_groups_that_the_checkpoint_keeps(tmp_path):
    """Chunks of 1,000 rows inserted 2,048 at a time into an on-disk table: each INSERT is one
    Arrow chunk, so every row group but the last is full and DuckDB's checkpoint has nothing
    to merge (partial row groups were rewritten at close: the 1M-row read's cache file grew by
    half again and the close took seconds)."""
    import duckdb
    con = duckdb.connect()
    con.execute(f"ATTACH '{tmp_path / 'c.duckdb'}' AS c (ROW_GROUP_SIZE 2048)")
    con.execute("USE c")
    con.execute("SET force_compression = 'uncompressed'")
    w = tables_mod.RowWriter(con, "t", chunk=1000, row_group=2048)
    for i in range(10_000):
        w.add(f"r{i}", {"messages": [], "instruction": f"instruction {i} " * 8, "response": "r"})
    w.close()

    def groups():
        return con.execute("SELECT row_group_id, sum(count) FROM pragma_storage_info('t__rows') WHERE column_id = 0 AND segment_type <> 'VALIDITY' "
                           "GROUP BY row_group_id ORDER BY row_group_id").fetchall()
    before = groups()
    assert [c for _, c in before] == [2048] * 4 + [10_000 - 4 * 2048]
    con.execute("CHECKPOINT")
    assert groups() == before
    assert con.execute("SELECT count(*), min(_row), max(_row) FROM t").fetchall() == [(10_000, 0, 9_999)]


def test_a_folder_of_files_reads_alike_on_both_paths_and_takes_the_fast_one(tmp_path, monkeypatch):
    """Each Alpaca JSON-lines file of a folder takes the fast path (ids name the file); a
    file in another format, and a broken line, go record by record; the bytes agree."""
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_text("".join(json.dumps({"instruction": f"a{i}", "output": "x", "n": i}) + "\n"
                                       for i in range(30)) + "{broken\n")
    (d / "b.jsonl").write_text("".join(json.dumps({"instruction": f"b{i}", "input": "ctx", "output": "y"}) + "\n"
                                       for i in range(20)))
    (d / "c.jsonl").write_text(json.dumps({"conversations": [{"from": "human", "value": "hi"},
                                                             {"from": "gpt", "value": "hello"}]}) + "\n")
    text = f'recipe t\nsource raw = read("{d}")\nwrite raw to "x.jsonl"\n'
    with monkeypatch.context() as m:
        taken = _fast_chunks(m)
        res = load(text).run(out=tmp_path / "fast", cache_dir=tmp_path / "c1")
    # a.jsonl's chunk has the broken line; c.jsonl (ShareGPT) takes the chat fast path
    assert taken == [20, 1] and res.manifest["sinks"][0]["rows"] == 51
    monkeypatch.setattr(read_mod, "_fast", lambda *a: False)
    load(text).run(out=tmp_path / "slow", cache_dir=tmp_path / "c2")
    assert _outputs(tmp_path / "fast") == _outputs(tmp_path / "slow")
    ids = [json.loads(x)["_id"] for x in (tmp_path / "fast" / "x.jsonl").read_text().splitlines()]
    assert "raw:b.jsonl:0" in ids and "raw:c.jsonl:0" in ids


# Parquet holds one type per column, so each column's values come from one type (and null)
PQ_COLS = {"c_int": st.integers(-5, 5), "c_float": st.one_of(st.floats(-3, 3).map(lambda x: round(x, 2)), st.just(float("nan"))),
           "c_bool": st.booleans(), "c_list": st.lists(st.sampled_from(["x", "y"]), max_size=3),
           "c_struct": st.fixed_dictionaries({"k": st.integers(0, 2)}), "system": st.just("be brief")}
PQ_ROW = st.fixed_dictionaries(
    {"instruction": st.one_of(*[st.text(alphabet="abc", min_size=1, max_size=4)] * 6, st.just(""), st.just(" "),
                              st.none()),
     "input": st.one_of(st.sampled_from(["", " ", "q r", "\u00a0"]), st.none()),
     "output": st.one_of(*[st.text(alphabet="xyz ", max_size=4)] * 6, st.none())})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(PQ_ROW, min_size=1, max_size=12), extra=st.sampled_from(sorted(PQ_COLS)), data=st.data(),
       narrow=st.booleans())
def test_parquet_fast_and_record_by_record_reads_agree(ram_tmp, monkeypatch, rows, extra, data, narrow):
    """Alpaca rows in Parquet: an extra column of each type (NaN and nested values send their
    chunk to the record reader), narrow ints and floats, large strings; the bytes agree."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [{"instruction": "first", "input": "", "output": "row"}] + rows
    for r in rows:
        r[extra] = data.draw(st.one_of(st.none(), PQ_COLS[extra]))
    t = pa.Table.from_pylist(rows)
    if narrow and extra in ("c_int", "c_float"):
        t = t.set_column(t.schema.get_field_index(extra), extra,
                         t.column(extra).cast(pa.int32() if extra == "c_int" else pa.float32()))
    t = t.set_column(0, "instruction", t.column("instruction").cast(pa.large_string()))
    tmp = ram_tmp.mktemp("pq")
    pq.write_table(t, tmp / "d.parquet", row_group_size=3)
    _both_paths_agree(monkeypatch, tmp, tmp / "d.parquet", "_fast_parquet", str(rows))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(PQ_ROW, min_size=1, max_size=12), extra=st.sampled_from(sorted(PQ_COLS)), data=st.data(),
       stream=st.booleans())
def test_arrow_file_fast_and_record_by_record_reads_agree(ram_tmp, monkeypatch, rows, extra, data, stream):
    """Alpaca rows in an Arrow file (a Hugging Face save_to_disk shard: the IPC stream format,
    or the file format) read alike on Arrow's fast path and record by record."""
    import pyarrow as pa
    rows = [{"instruction": "first", "input": "", "output": "row"}] + rows
    for r in rows:
        r[extra] = data.draw(st.one_of(st.none(), PQ_COLS[extra]))
    t = pa.Table.from_pylist(rows)
    tmp = ram_tmp.mktemp("arrow")
    with pa.OSFile(str(tmp / "d.arrow"), "wb") as f:
        w = pa.ipc.new_stream(f, t.schema) if stream else pa.ipc.new_file(f, t.schema)
        w.write_table(t, max_chunksize=4)
        w.close()
    _both_paths_agree(monkeypatch, tmp, tmp / "d.arrow", "_fast_arrow", str(rows))


def test_an_arrow_file_takes_the_fast_path(tmp_path, monkeypatch):
    import pyarrow as pa
    t = pa.Table.from_pylist([{"instruction": f"q{i}", "input": "", "output": "a", "n": i} for i in range(50)])
    with pa.OSFile(str(tmp_path / "d.arrow"), "wb") as f, pa.ipc.new_stream(f, t.schema) as w:
        w.write_table(t)
    taken = _fast_chunks(monkeypatch)
    res = load(f'recipe t\nsource raw = read("{tmp_path / "d.arrow"}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert taken == [50] and res.manifest["sinks"][0]["rows"] == 50
    assert json.loads((tmp_path / "o" / "x.jsonl").read_text().splitlines()[7])["n"] == 7


def test_parquet_takes_the_fast_path(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist([{"instruction": f"q{i}", "input": "", "output": "a", "n": i}
                                         for i in range(50)]), tmp_path / "d.parquet")
    taken = _fast_chunks(monkeypatch)
    res = load(f'recipe t\nsource raw = read("{tmp_path / "d.parquet"}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert taken == [50] and res.manifest["sinks"][0]["rows"] == 50
    assert json.loads((tmp_path / "o" / "x.jsonl").read_text().splitlines()[7])["n"] == 7


def test_a_nan_in_parquet_is_set_aside_on_the_fast_path_as_record_by_record(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [{"instruction": f"q{i}", "output": "a", "x": float("nan") if i == 4 else i / 2} for i in range(9)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    text = f'recipe t\nsource raw = read("{tmp_path / "d.parquet"}")\nwrite raw to "x.jsonl"\n'
    taken = _fast_then_slow(monkeypatch, tmp_path, text, "_fast_parquet")
    assert taken == [3, 3]  # the chunk with the NaN went record by record
    assert _outputs(tmp_path / "fast") == _outputs(tmp_path / "slow")
    assert "field `x` is nan" in (tmp_path / "fast" / "set_aside.jsonl").read_text()


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt"])
def test_invalid_utf8_in_json_lines_is_set_aside_on_the_fast_path_as_line_by_line(tmp_path, monkeypatch, fmt):
    """Arrow's JSON parser takes invalid UTF-8 into its strings (DuckDB then failed the whole
    read): the fast path hands such a chunk to the line reader, which sets the line aside."""
    def line(i, text):
        if fmt == "alpaca":
            return b'{"instruction": "' + text + b'", "output": "a"}\n'
        return b'{"conversations": [{"from": "human", "value": "' + text + b'"}]}\n'
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"".join(line(i, b"bad \xff q" if i == 4 else f"q{i}".encode()) for i in range(9)))
    text = f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n'
    assert _fast_then_slow(monkeypatch, tmp_path, text, "_fast") == [3, 3]  # the bad line's chunk: line by line
    assert _outputs(tmp_path / "fast") == _outputs(tmp_path / "slow")
    assert "d.jsonl:5: invalid UTF-8 at byte" in (tmp_path / "fast" / "set_aside.jsonl").read_text()


def test_invalid_utf8_in_parquet_is_set_aside_on_both_paths_and_check_says_nothing_wrong(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq
    inst = pa.array([f"q{i}".encode() if i != 4 else b"bad \xff" for i in range(9)], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"instruction": inst, "output": pa.array(["a"] * 9)}), tmp_path / "d.parquet")
    text = f'recipe t\nsource raw = read("{tmp_path / "d.parquet"}")\nwrite raw to "x.jsonl"\n'
    assert load(text).check().ok  # sniffing the rows does not crash on the bad one
    taken = _fast_then_slow(monkeypatch, tmp_path, text, "_fast_parquet")
    assert taken == [3, 3]
    assert _outputs(tmp_path / "fast") == _outputs(tmp_path / "slow")
    assert "d.parquet[4]: invalid UTF-8 in a text field" in (tmp_path / "fast" / "set_aside.jsonl").read_text()


# mostly roles the fast path takes, so its chunks meet the reader's in every order
ROLES = st.sampled_from(["human", "gpt", "user", "assistant"] * 3 + ["system", "GPT", "Human", "robot", "\u0130user"])
TURN = st.fixed_dictionaries({"r": ROLES, "c": st.text(alphabet="ab \u3000", max_size=4)})


def _chat_line(fmt: str, turns: list[dict], extra, weird: int, key: str | None = None) -> str:
    own, rk, ck = {"sharegpt": ("conversations", "from", "value"), "openai": ("messages", "role", "content")}[fmt]
    key = key or own
    rec = {key: [{rk: t["r"], ck: t["c"]} for t in turns]}
    if weird == 1 and turns:
        rec[key][0].pop(ck)  # a turn without text
    elif weird == 2:
        rec[key] = [t["c"] for t in turns]  # LIMA's plain strings
    elif weird == 3 and turns:
        rec[key][-1][ck] = 7  # a turn whose text is not text
    elif weird == 4 and turns:  # as recipe writes canonical rows: its own columns beside the turns
        rec.update({"_id": "raw:1", "instruction": turns[0]["c"], "response": "ab"})
    elif weird == 5 and turns:  # a turn's own field: kept, with the turns, by the record reader
        rec[key][-1]["name"] = "bo"
    elif weird == 6 and turns:  # one that holds nothing (OpenHermes' `weight: null`): the fast path's
        for t in rec[key]:
            t["weight"] = None
    if extra is not None:
        rec["c1"] = extra
    return json.dumps(rec)


@pytest.mark.parametrize("fmt,key", [("sharegpt", None), ("openai", None), ("openai", "conversation"),
                                     ("sharegpt", "dialog")])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.lists(TURN, max_size=4), st.one_of(st.none(), PLAIN, st.just({"k": 1})),
                               st.sampled_from([0] * 8 + [1, 2, 3, 4, 5, 6])), min_size=1, max_size=10),
       broken=st.booleans())
def test_chat_fast_and_line_by_line_reads_agree(ram_tmp, monkeypatch, fmt, key, rows, broken):
    """ShareGPT and OpenAI rows: roles of every case (unknown, non-ASCII), turns without text,
    LIMA's strings, no user turn or a blank one, extra columns of every kind, turns with fields
    of their own; the turns under another name (LMSYS-Chat's `conversation`); the bytes agree."""
    lines = [_chat_line(fmt, [{"r": "human", "c": "first"}, {"r": "gpt", "c": "row"}], None, 0, key)]
    lines += [_chat_line(fmt, *r, key) for r in rows] + (["{broken"] if broken else [])
    tmp = ram_tmp.mktemp("chat")
    data = tmp / "d.jsonl"
    data.write_text("".join(line + "\n" for line in lines))
    _both_paths_agree(monkeypatch, tmp, data, "_fast", "\n".join(lines))


def test_a_chunk_of_only_null_lines_is_set_aside_not_a_crash(tmp_path, monkeypatch):
    """pyarrow 26's JSON reader crashes the process on a block that is only `null`: such a
    chunk goes to the line-by-line reader, which sets the line aside as not an object."""
    lines = ['{"instruction": "a", "output": "x"}', "null", "null", '{"instruction": "b", "output": "y"}']
    data = tmp_path / "d.jsonl"
    data.write_text("".join(line + "\n" for line in lines))
    _both_paths_agree(monkeypatch, tmp_path, data, "_fast", "\n".join(lines), chunk=1, fmt="alpaca")
    aside = (tmp_path / "fast" / "set_aside.jsonl").read_text()
    assert aside.count("not a JSON object") == 2


# CSV fields: separators, quotes, line breaks (\n, \r\n, \r) and non-ASCII text inside them
FIELD = st.lists(st.sampled_from(['a', 'b', ' ', ',', '"', '\n', '\r\n', '\r', '\t', 'é', '\u3000']),
                 max_size=5).map("".join)
CSV_ROW = st.one_of(*[st.tuples(st.text(alphabet="abc", min_size=1, max_size=3), FIELD, FIELD, FIELD)] * 6,
                    st.tuples(st.sampled_from(["", " "]), FIELD, FIELD, FIELD))
BROKEN_CSV = st.sampled_from(["only one field", "a,b,c,d,e", "", " ", '"never closed,x,y,z'])


def _csv_text(rows, broken, delim: str, bom: bool, header: bool = True,
              names=("instruction", "input", "output", "note")) -> str:
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator="\n")
    if header:
        w.writerow(names)
    w.writerow(["first", "", "row", ""])
    for i, r in enumerate(rows):
        w.writerow(r)
        for at, line in broken:
            if at == i:
                buf.write(line.replace(",", delim) + "\n")
    return ("\ufeff" if bom else "") + buf.getvalue()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(CSV_ROW, min_size=1, max_size=12), broken=st.lists(st.tuples(st.integers(0, 11), BROKEN_CSV), max_size=2),
       tsv=st.booleans(), bom=st.booleans(), block=st.sampled_from([64, 200, 1 << 20]))
def test_csv_fast_and_record_by_record_reads_agree(ram_tmp, monkeypatch, rows, broken, tsv, bom, block):
    """Alpaca rows in CSV or TSV (quoted separators, quotes and line breaks in fields, a BOM,
    empty instructions, rows with too few or too many fields, blank lines, an unclosed quote),
    read in small Arrow blocks and record by record: the bytes agree."""
    import recipe.io.arrow_csv as csv_mod
    monkeypatch.setattr(csv_mod, "BLOCK", block)
    tmp = ram_tmp.mktemp("csv")
    data = tmp / ("d.tsv" if tsv else "d.csv")
    data.write_bytes(_csv_text(rows, broken, "\t" if tsv else ",", bom).encode())
    _both_paths_agree(monkeypatch, tmp, data, "_fast_csv", repr(data.read_bytes()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(CSV_ROW, min_size=1, max_size=12), broken=st.lists(st.tuples(st.integers(0, 11), BROKEN_CSV), max_size=2),
       tsv=st.booleans(), block=st.sampled_from([64, 1 << 20]))
def test_headerless_csv_fast_and_record_by_record_reads_agree(ram_tmp, monkeypatch, rows, broken, tsv, block):
    """A CSV/TSV without a header row, its fields named by `columns=`: both paths read the
    first line as a row and agree byte for byte, broken rows included."""
    import recipe.io.arrow_csv as csv_mod
    monkeypatch.setattr(csv_mod, "BLOCK", block)
    tmp = ram_tmp.mktemp("csvh")
    data = tmp / ("d.tsv" if tsv else "d.csv")
    data.write_bytes(_csv_text(rows, broken, "\t" if tsv else ",", False, header=False).encode())
    _both_paths_agree(monkeypatch, tmp, data, "_fast_csv", repr(data.read_bytes()),
                      options=', columns=["instruction", "input", "output", "note"]')
    first = json.loads((tmp / "fast" / "x.jsonl").read_text().splitlines()[0])
    assert (first["instruction"], first["response"], first["note"]) == ("first", "row", "")


def test_headerless_tsv_reads_every_line_and_names_the_fields_in_reasons(tmp_path, monkeypatch):
    """FLAN's CoT files are TSVs without a header: `columns=` names the fields, every line
    is a row (the first too), a line with a field too many is set aside saying so, and the
    names are part of the read's fingerprint."""
    data = tmp_path / "cot.tsv"
    data.write_text("Q one?\t1\tbecause\nQ two?\t2\tso\textra\nQ three?\t3\tthus\n")
    text = ('recipe t\nsource cot = read("{p}", columns=["instruction", "output", "rationale"])\n'
            'write cot to "x.jsonl"\n')
    taken = _fast_chunks(monkeypatch)
    r = load(text.format(p=data))
    res = r.run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    rows = [json.loads(x) for x in (tmp_path / "o" / "x.jsonl").read_text().splitlines()]
    assert [(x["instruction"], x["response"], x["rationale"]) for x in rows] == [("Q one?", "1", "because"),
                                                                                ("Q three?", "3", "thus")]
    aside = [json.loads(x) for x in (tmp_path / "o" / "set_aside.jsonl").read_text().splitlines()]
    assert [a["_id"] for a in aside] == ["cot:1"]
    assert "cot.tsv:2: more fields than the 3 names in `columns`" in aside[0]["reason"]
    assert res.manifest["nodes"][0]["rows_created"] == 3
    clean = tmp_path / "clean.tsv"
    clean.write_text("Q one?\t1\tbecause\nQ three?\t3\tthus\n")
    taken.clear()
    load(text.format(p=clean)).run(out=tmp_path / "o2", cache_dir=tmp_path / "c")
    again = [json.loads(x) for x in (tmp_path / "o2" / "x.jsonl").read_text().splitlines()]
    assert taken == [2] and [{**x, "_id": None} for x in again] == [{**x, "_id": None} for x in rows]
    other = load(text.format(p=data).replace('"rationale"', '"why"'))
    assert other.plan().steps[0].fingerprint != r.plan().steps[0].fingerprint


@pytest.mark.parametrize("option, code, message", [
    ('columns=["a", "b"]', "E0903", "`columns` names the fields of a CSV/TSV file without a header row; this is a jsonl"),
    ('columns=["a", "a"]', "E0907", "`columns` names `a` twice"),
    ('columns="a"', "E0907", "`columns` must be a list of field names"),
])
def test_bad_columns_option_is_a_check_error(tmp_path, option, code, message):
    from recipe.diagnostics import RecipeError
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    with pytest.raises(RecipeError) as e:
        load(f'recipe t\nsource raw = read("{data}", {option})\nwrite raw to "x.jsonl"\n').check()
    assert any(d.code == code and message in d.message for d in e.value.diagnostics), e.value.diagnostics


def test_csv_takes_the_fast_path_and_sets_a_short_row_aside_with_its_line(tmp_path, monkeypatch):
    """A clean CSV is read by Arrow alone; after a row with too few fields the record reader
    reads the rest, so the reason names the row's line, as it does on the slow path."""
    import recipe.io.arrow_csv as csv_mod
    rows = "".join(f'q{i},"multi\nline {i}",a{i}\n' for i in range(40))
    data = tmp_path / "d.csv"
    data.write_text("\ufeffinstruction,input,output\n" + rows)
    taken = _fast_chunks(monkeypatch)
    res = load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert sum(taken) == 40 and res.manifest["sinks"][0]["rows"] == 40
    row = json.loads((tmp_path / "o" / "x.jsonl").read_text().splitlines()[7])
    assert row["instruction"] == "q7\n\nmulti\nline 7" and row["response"] == "a7"
    data.write_text("instruction,input,output\n" + rows + "short row\n" + rows)
    monkeypatch.setattr(csv_mod, "BLOCK", 256)
    taken.clear()
    res = load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o2", cache_dir=tmp_path / "c2")
    assert 0 < sum(taken) < 40 and res.manifest["sinks"][0]["rows"] == 80
    aside = [json.loads(x) for x in (tmp_path / "o2" / "set_aside.jsonl").read_text().splitlines()]
    assert len(aside) == 1 and "d.csv:82" in aside[0]["reason"]


def test_a_read_that_fails_midway_reports_its_error_and_leaves_the_cache_usable(tmp_path, monkeypatch):
    """Blocks already inserted into the step's table (and some held for a whole row group),
    then bad UTF-8: the run stops with the reader's error, not a hang, and the fixed file
    then reads in full on the same cache."""
    import recipe.io.arrow_csv as csv_mod
    from recipe.diagnostics import UserError
    monkeypatch.setattr(csv_mod, "BLOCK", 256)
    good = "".join(f"q{i},,a{i}\n" for i in range(3000))  # the bad byte is past what `check` samples
    data = tmp_path / "d.csv"
    data.write_bytes(b"instruction,input,output\n" + good.encode() + b"q,,\xff\n")
    text = f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n'
    taken = _fast_chunks(monkeypatch)
    import threading
    got = []

    def failing_run():
        with pytest.raises(UserError, match="invalid UTF-8"):
            load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
        got.append("raised")
    t = threading.Thread(target=failing_run, daemon=True)  # a hang fails the test, not the suite
    t.start()
    t.join(120)
    assert got == ["raised"] and sum(taken) > 0
    data.write_text("instruction,input,output\n" + good)
    res = load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert res.manifest["sinks"][0]["rows"] == 3000


@pytest.mark.parametrize("name", ["d.jsonl.gz", "d.jsonl.bz2", "d.jsonl.xz", "d.jsonl"])
def test_compressed_and_byte_order_marked_json_lines_read_on_both_paths(tmp_path, monkeypatch, name):
    """Dumps come compressed (`.gz`, `.bz2`, `.xz`) and Windows tools start a file with a UTF-8
    byte-order mark: the first record is a row (it was set aside as malformed JSON), and both
    paths agree on every row, a broken line included."""
    import bz2
    import gzip
    import lzma
    lines = [json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(7)] + ["{broken"]
    data = b"\xef\xbb\xbf" + "".join(x + "\n" for x in lines).encode()
    opener = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}.get(Path(name).suffix, bytes)
    path = tmp_path / name
    path.write_bytes(opener(data))
    _both_paths_agree(monkeypatch, tmp_path, path, "_fast", name)
    rows = [json.loads(x) for x in (tmp_path / "fast" / "x.jsonl").read_text().splitlines()]
    assert [r["instruction"] for r in rows] == [f"q{i}" for i in range(7)]


def test_compressed_csv_json_array_and_the_files_a_folder_offers(tmp_path):
    import gzip
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "a.csv.gz").write_bytes(gzip.compress(b"\xef\xbb\xbfinstruction,output\nq1,a1\n"))
    (d / "b.json.gz").write_bytes(gzip.compress(b'[{"instruction": "q2", "output": "a2"}]'))
    (d / "c.tsv.gz").write_bytes(gzip.compress(b"q3\ta3\n"))
    (d / "README.md").write_text("not data")
    (d / "e.parquet.gz").write_bytes(b"Parquet compresses inside the file")
    res = load(f'recipe t\nsource raw = read("{d}/[ab]*")\nsource h = read("{d / "c.tsv.gz"}", format="alpaca", '
               f'columns=["instruction", "output"])\nwrite raw to "x.jsonl"\nwrite h to "h.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    got = [json.loads(x)["instruction"] for x in (tmp_path / "o" / "x.jsonl").read_text().splitlines()]
    assert got == ["q1", "q2"] and res.manifest["sinks"][1]["rows"] == 1
    from recipe.diagnostics import UserError
    from recipe.io.readers import list_files
    assert [f.name for f in list_files(str(d))] == ["a.csv.gz", "b.json.gz", "c.tsv.gz"]
    with pytest.raises(UserError, match=r"unknown file type `\.parquet\.gz`"):
        list_files(str(d / "e.parquet.gz"))
    (d / "f.jsonl.gz").write_bytes(b"not gzip at all")
    from recipe.diagnostics import RecipeError
    with pytest.raises(RecipeError, match="cannot read it as .gz"):  # found by `check`, before anything runs
        load(f'recipe t\nsource raw = read("{d / "f.jsonl.gz"}")\nwrite raw to "x.jsonl"\n').check()


@pytest.mark.parametrize("second", ['{"instruction": "a", "output": "x", "response": "x"}',
                                    '{"instruction": "a", "output": "x", "response": null}'])
def test_an_own_named_field_that_holds_nothing_else_adds_no_column_on_either_path(tmp_path, monkeypatch, second):
    # found by the array property test: a `response` field equal to the row's own response in
    # one row and missing in the other made `response_in_input` (all null) on the fast path only
    lines = ['{"instruction": "first", "output": "row"}', second]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(lines) + "\n")
    _both_paths_agree(monkeypatch, tmp_path, data, "_fast", second, 2, fmt="alpaca")
    assert "response_in_input" not in (tmp_path / "fast" / "x.jsonl").read_text()


@pytest.mark.parametrize("fmt,key", [("openai", "conversation"), ("sharegpt", "data")])
def test_a_conversation_under_another_name_is_detected_and_takes_the_fast_path(tmp_path, monkeypatch, fmt, key):
    # LMSYS-Chat-1M keeps OpenAI's turns in `conversation`, UltraChat alternating texts in `data`
    # (both were "cannot tell the format"); role/content turns take the chat fast path
    if fmt == "openai":
        rows = [{"conversation_id": str(i), key: [{"role": "user", "content": f"q{i}"},
                                                  {"role": "assistant", "content": "a"}], "turn": 1} for i in range(20)]
    else:
        rows = [{"id": str(i), key: [f"q{i}", "a", "more?", "yes"]} for i in range(20)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    taken = _fast_chunks(monkeypatch)
    res = load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert res.manifest["nodes"][0]["stats"]["format"] == f"{fmt} (detected)"
    assert taken == ([20] if fmt == "openai" else [])  # LIMA's strings are the record reader's
    got = [json.loads(line) for line in (tmp_path / "o" / "x.jsonl").read_text().splitlines()]
    assert [(r["instruction"], r["response"]) for r in got[:2]] == [("q0", "a"), ("q1", "a")]
    assert key not in got[0] and (fmt == "openai" or [m["role"] for m in got[0]["messages"]] ==
                                  ["user", "assistant", "user", "assistant"])


@pytest.mark.parametrize("key", ["conversation", "conversations"])
def test_capybaras_input_output_exchanges_are_a_conversation(tmp_path, key):
    # LDJnr's Capybara (and Pure-Dove) keep each exchange as {input, output}
    rows = [{"source": "s", key: [{"input": "Hi?", "output": "Hello."}, {"input": "More?", "output": "Yes."}]},
            {"source": "t", key: [{"input": "One", "output": "Two"}]}]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert res.manifest["nodes"][0]["stats"]["format"] == "sharegpt (detected)"
    got = [json.loads(line) for line in (tmp_path / "o" / "x.jsonl").read_text().splitlines()]
    assert [m["content"] for m in got[0]["messages"]] == ["Hi?", "Hello.", "More?", "Yes."]
    assert [m["role"] for m in got[0]["messages"]] == ["user", "assistant"] * 2
    assert (got[1]["instruction"], got[1]["response"], got[1]["source"]) == ("One", "Two", "t") and key not in got[1]
