"""The Ray engine gives the DuckDB engine's answer: the same sink bytes, the same
set_aside.jsonl and the same manifest counts for every example (and every library recipe:
tests/test_stdlib.py runs each on both engines); a worker
killed mid-step loses no rows; a killed driver resumes from its finished steps.

Tables are cut into blocks of a few rows (RECIPE_RAY_BLOCK_ROWS) so every step crosses block
bounds; models run on two actors each, so model calls are sharded."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from recipe.api import load  # noqa: E402

from conftest import alpaca_rows, write_jsonl  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def _stop_ray_after_this_module():
    yield
    from conftest import stop_ray
    stop_ray()


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setenv("RECIPE_RAY_BLOCK_ROWS", "7")


def outputs(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.json"}


def counts(manifest: dict) -> list:
    """Each step's rows and statistics (a training step's say whether it trained or found its
    weights already trained: the second engine's run finds them), then the sinks' rows and the
    types of their columns (the dataset card's features)."""
    return [(n["name"], n["rows_in"], n["rows_created"], n["rows_out"], n["rows_set_aside"],
             n.get("stats") if n["op"] != "finetune" else None)
            for n in manifest["nodes"]] + [(s["name"], s["rows"], s.get("features")) for s in manifest["sinks"]]


def both(r, tmp_path, runtimes=(None, None), **kw):
    res = {}
    for eng, rt in zip(("duckdb", "ray"), runtimes):
        res[eng] = r.run(out=tmp_path / f"o-{eng}", cache_dir=tmp_path / f"c-{eng}", engine=eng, runtime=rt,
                         replicas=2, **kw)
    return res


@pytest.mark.parametrize("example", ["quickstart.recipe", "decontaminate.recipe", "quickstart.yaml", "languages.recipe"])
def test_examples_give_the_same_bytes_on_both_engines(example, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "examples")
    res = both(load(str(ROOT / "examples" / example)), tmp_path)
    assert res["ray"].manifest["engine"] == "ray"
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
    node = res["duckdb"].manifest["nodes"][-1]["name"]
    assert res["ray"].table(node).equals(res["duckdb"].table(node))


CRASH = """recipe crash
source raw = read("{data}", format="alpaca")
clean = raw
  | filter(length(response) > 30)
  | derive(n=words(response))
  | dedupe(method="exact", on=instruction)
  | dedupe(method="minhash", on=response, threshold=0.7)
top = clean | select(method="topk", k=20, by=n)
write top to "top.jsonl"
write clean to "clean.jsonl" (format="alpaca")
"""


@pytest.fixture
def crash_recipe(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(80, dup_every=5))
    f = tmp_path / "crash.recipe"
    f.write_text(CRASH.format(data=data))
    return f


def test_a_worker_killed_mid_step_loses_no_rows(crash_recipe, tmp_path, monkeypatch):
    r = load(str(crash_recipe))
    ref = r.run(out=tmp_path / "ref", cache_dir=tmp_path / "c-ref", engine="ray")
    monkeypatch.setenv("RECIPE_FAULT_INJECT", "ray:worker")  # the first block task of each step dies
    got = r.run(out=tmp_path / "o", cache_dir=tmp_path / "c", engine="ray")
    killed = list((tmp_path / "c" / "ray").glob(".killed-*"))
    assert len(killed) >= 3  # filter, derive and dedupe each lost a worker
    assert outputs(tmp_path / "o") == outputs(tmp_path / "ref")
    assert counts(got.manifest) == counts(ref.manifest)


def test_a_killed_driver_resumes_from_finished_steps(crash_recipe, tmp_path):
    import ray

    def run(out, cache, fault=None):
        env = dict(os.environ)
        if fault:
            env["RECIPE_FAULT_INJECT"] = fault
        return subprocess.run([sys.executable, "-m", "recipe", "run", str(crash_recipe), "--engine", "ray",
                               "--address", address, "--out", str(out), "--cache-dir", str(cache), "--quiet"],
                              env=env, capture_output=True, text=True, timeout=300)
    # the reference from this process's Ray instance; the killed and resumed runs are driver
    # processes of their own connected to it, as drivers on a cluster are (a driver starting
    # a local instance of its own took about 15 s here)
    load(str(crash_recipe)).run(out=tmp_path / "ref", cache_dir=tmp_path / "c-ref", engine="ray")
    address = ray.get_runtime_context().gcs_address
    killed = run(tmp_path / "o", tmp_path / "c", "step:clean/dedupe:after_commit")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # a step killed before its record is rebuilt: blocks without a record are removed
    again = run(tmp_path / "o", tmp_path / "c", "step:clean/dedupe#2:before_commit")
    assert again.returncode == -signal.SIGKILL, again.stderr
    resumed = run(tmp_path / "o", tmp_path / "c")
    assert resumed.returncode == 0, resumed.stderr
    assert outputs(tmp_path / "o") == outputs(tmp_path / "ref")
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    cached = {n["name"]: n["cached"] for n in man["nodes"]}
    assert cached["raw"] and cached["clean/dedupe"] and not cached["clean/dedupe#2"]


def test_explain_and_report_read_a_ray_runs_cache(tmp_path, monkeypatch):
    from recipe.explain import explain
    from recipe.report.collect import collect
    monkeypatch.chdir(ROOT / "examples")
    both(load(str(ROOT / "examples" / "quickstart.recipe")), tmp_path)
    o, c = {e: tmp_path / f"o-{e}" for e in ("duckdb", "ray")}, {e: tmp_path / f"c-{e}" for e in ("duckdb", "ray")}
    for rid in ("raw:112", "raw:3", "raw:7"):
        got = explain(o["ray"], rid, c["ray"])
        assert len(got) >= 2 and got == explain(o["duckdb"], rid, c["duckdb"])
    ray_facts, duck_facts = collect(o["ray"], c["ray"], None), collect(o["duckdb"], c["duckdb"], None)
    assert not ray_facts.note and ray_facts.kept and ray_facts.kept == duck_facts.kept
    # `recipe plan` reads a Ray run's cache too (without starting Ray): every step is cached
    from recipe.cli import main
    import io
    from contextlib import redirect_stdout
    for eng in ("ray", "duckdb"):
        buf = io.StringIO()
        with redirect_stdout(buf):
            assert main(["plan", "quickstart.recipe", "--cache-dir", str(c[eng])]) == 0
        steps = [ln for ln in buf.getvalue().splitlines() if "<-" in ln]
        assert steps and all(ln.endswith("[cached]") for ln in steps), buf.getvalue()


@pytest.mark.parametrize("cells", ["", ", cells=3"])
def test_an_endpoint_model_is_called_from_the_driver_with_the_same_answer(tmp_path, monkeypatch, cells):
    """A server does the work, so no actors start for it: the driver's client sends the
    requests (many in flight) and both engines give the same bytes; with k-means cells
    (SemDeDup) too, whose cells run as tasks."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Embeddings(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = [{"index": i, "embedding": [float(len(t) % 5), 1.0, float(t.count("1"))]}
                    for i, t in enumerate(body["input"])]
            raw = json.dumps({"data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Embeddings)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(20))
        r = load(f'''recipe t
model emb = embedding("openai:http://127.0.0.1:{srv.server_address[1]}/v1#toy")
source raw = read("{data}")
x = raw | dedupe(method="semantic", on=instruction, embedding=emb, threshold=0.999{cells})
write x to "x.jsonl"
''')
        from recipe.engine.ray_models import ModelPool
        from recipe.runtime import ModelRuntime
        monkeypatch.setattr(ModelPool, "_actors", lambda *a: pytest.fail("an actor pool started for a server"))
        res = both(r, tmp_path, runtimes=(ModelRuntime(tmp_path / "m-duckdb"), ModelRuntime(tmp_path / "m-ray")))
        assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
        assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
        assert res["duckdb"].manifest["nodes"][-1]["rows_set_aside"] > 0  # the toy vectors collide
        (st,) = res["ray"].manifest["model_runtime"].values()
        assert st["sent"] >= 1 and st["computed"] == 20
        assert (res["ray"].manifest["nodes"][-1].get("stats") or {}).get("cells") == (3 if cells else None)
    finally:
        srv.shutdown()


@pytest.mark.parametrize("keep", ["first", "longest"])
def test_minhash_runs_as_band_key_shuffle_with_no_signature_matrix_on_the_driver(tmp_path, monkeypatch, keep):
    """On Ray, MinHash signs blocks and groups band keys in tasks (three reducers, blocks of 7
    rows), and the driver never clusters a signature matrix (the one-machine path raises
    there); the answer is the DuckDB engine's, texts shorter than a shingle and ties included."""
    import ray
    import recipe.algorithms.minhash as mh
    # words from a small vocabulary: many bucket mates, and many of them turned down
    rng = np.random.default_rng(0)
    words = [f"w{i}x" for i in range(15)]
    rows = [{"instruction": " ".join(rng.choice(words, 5 + i % 3)), "input": "", "output": "x"} for i in range(40)]
    rows += [{"instruction": "a", "input": "", "output": "e"}, {"instruction": "ab", "input": "", "output": "f"}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    r = load(f'''recipe t
source raw = read("{data}", format="alpaca")
x = raw | dedupe(method="minhash", on=instruction, threshold=0.5, ngram=3, keep="{keep}")
write x to "x.jsonl"
''')
    duck = r.run(out=tmp_path / "o-duckdb", cache_dir=tmp_path / "c-duckdb", engine="duckdb")

    def no_matrix(*a, **k):
        raise AssertionError("the driver clustered a signature matrix")
    monkeypatch.setattr(mh, "signature_clusters", no_matrix)
    real = ray.available_resources
    monkeypatch.setattr(ray, "available_resources", lambda: {**real(), "CPU": 3.0})
    ray_run = r.run(out=tmp_path / "o-ray", cache_dir=tmp_path / "c-ray", engine="ray")
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert counts(ray_run.manifest) == counts(duck.manifest)
    assert 10 < duck.manifest["nodes"][1]["rows_out"] < 35
    # the labels themselves, with progress as blocks are signed (6 blocks of 7 rows)
    from recipe.algorithms.minhash import minhash_signatures
    from recipe.engine.ray_table import RayTable
    fp = ray_run.manifest["nodes"][0]["fingerprint"]
    said = []
    labels, lengths = RayTable(tmp_path / "c-ray" / "ray" / f"t_{fp[:24]}").minhash_labels(
        "instruction", 0.5, 3, "char", 256, 0, progress=lambda done, total: said.append((done, total)))
    monkeypatch.undo()
    texts = [r["instruction"] for r in rows]
    assert np.array_equal(labels, mh.signature_clusters(minhash_signatures(texts, 3, "char", 256), 0.5))
    assert lengths == [len(t) for t in texts]
    assert sorted(said) == said and said[-1] == (42, 42) and len(said) == 6


def test_reducers_find_the_pairs_of_one_machine_however_keys_are_partitioned():
    """Ray's reduce task (`verified_forest`: the (band, key, row) arrays of one partition,
    signature rows fetched from the blocks' object refs) finds forests whose merge has the
    components of the numpy definition's pairs, so the labels equal `signature_clusters`'."""
    import ray
    from minhash_reference import band_pair_set
    from recipe.algorithms.clusters import connected_labels, forest_labels, merge_forests
    from recipe.algorithms.minhash import EMPTY, band_keys, lsh_params, signature_clusters
    from recipe.engine.ray_minhash import verified_forest
    from recipe.engine.ray_store import start_ray
    rng = np.random.default_rng(3)
    base = rng.integers(0, 50, size=(40, 64)).astype(np.uint32)
    sig = base[rng.integers(0, 40, size=300)].copy()
    noise = rng.random(sig.shape) < 0.25
    sig[noise] = rng.integers(0, 50, size=int(noise.sum())).astype(np.uint32)
    sig[[5, 77]] = EMPTY
    bands, rows = lsh_params(0.6, 64)
    want = connected_labels(300, *(np.array(x, np.int64) for x in zip(*band_pair_set(sig, 0.6, bands, rows))))
    assert np.array_equal(signature_clusters(sig, 0.6), want)
    start_ray()
    offsets = np.array([0, 100, 220, 300])
    sig_refs = [ray.put(sig[offsets[i]:offsets[i + 1]]) for i in range(3)]
    live = np.flatnonzero(~(sig == EMPTY).all(axis=1))
    for parts in (1, 4):
        forests = []
        for p in range(parts):
            b, k, r = [], [], []
            for band in range(bands):
                key = band_keys(sig[live], band, rows)
                sel = key % np.uint64(parts) == p
                b.append(np.full(int(sel.sum()), band, np.int32)), k.append(key[sel]), r.append(live[sel])
            forests.append(verified_forest(300, offsets, sig_refs, 0.6, (np.concatenate(b), np.concatenate(k),
                                                                        np.concatenate(r))))
        got = forest_labels(300, *merge_forests(*[x for f in forests for x in f]))
        assert np.array_equal(got, want)
    assert 40 < len(np.unique(want)) < 250  # clusters found, and candidates turned down


FOLDER = """recipe folder
source raw = read("{data}", format="alpaca")
clean = raw | filter(length(response) > 30) | dedupe(method="exact", on=instruction)
write clean to "clean.jsonl"
"""


def _read_rows(res, tmp_path) -> np.ndarray:
    """The `_row` values of the Ray run's read step, as its cache holds them."""
    import pyarrow.parquet as pq
    fp = res.manifest["nodes"][0]["fingerprint"]
    blocks = sorted((tmp_path / "c-ray" / "ray" / f"t_{fp[:24]}").glob("*.parquet"))
    return np.concatenate([pq.read_table(b, columns=["_row"]).column(0).to_numpy() for b in blocks])


@pytest.mark.parametrize("extra_column", [False, True])
def test_a_folder_is_read_by_a_task_per_file_with_the_same_answer(extra_column, tmp_path, monkeypatch):
    """Each file of a folder is read by its own task (its rows number from its file's index, so
    the read spreads over a cluster's workers); files whose columns differ (one has an extra
    column) are read together on the driver. Either way the DuckDB engine's bytes."""
    monkeypatch.setenv("RECIPE_RAY_READ_BYTES", "1000")  # a folder this small is read on the driver by default
    d = tmp_path / "data"
    d.mkdir()
    rows = alpaca_rows(60, dup_every=4)
    for i in range(3):
        part = [dict(r, category=f"c{j}") if extra_column and i == 1 else r for j, r in enumerate(rows[i::3])]
        lines = [json.dumps(r) for r in part]
        lines.insert(2, '{"instruction": "broken", ')  # set aside with its file and line
        write_jsonl(d / f"part-{i}.jsonl", lines)
    (d / "part-3.jsonl").write_text("")  # an empty file among them
    res = both(load(FOLDER.format(data=d)), tmp_path)
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
    aside = (tmp_path / "o-ray" / "set_aside.jsonl").read_text()
    assert "part-1.jsonl:3: malformed JSON" in aside
    rows_of = _read_rows(res["ray"], tmp_path)
    assert (np.diff(rows_of) > 0).all()
    assert (rows_of.max() >= 2 << 40) != extra_column  # a task per file, or one reader on the driver


@pytest.mark.parametrize("extra_column", [False, True])
def test_one_large_file_is_read_in_spans_with_the_same_answer(extra_column, tmp_path, monkeypatch):
    """A JSON-lines file larger than RECIPE_RAY_READ_BYTES is cut into byte spans that tasks read
    (counted first, so ids and line numbers are the whole file's: blank lines, a broken line and a
    last line without a newline among them); spans whose columns differ are read on the driver."""
    monkeypatch.setenv("RECIPE_RAY_READ_BYTES", "3000")
    rows = alpaca_rows(90, dup_every=4)
    lines = [json.dumps(dict(r, category="x") if extra_column and i > 60 else r, ensure_ascii=False)
             for i, r in enumerate(rows)]
    lines[10:10] = ["", "   ", '{"instruction": "broken", ']
    lines[40] = lines[40].replace("detail", "détail ✓")
    lines.insert(80, '{"instruction": "broken too", ')  # in a later span: its line counts the blank ones
    data = tmp_path / "big.jsonl"
    data.write_text("\n".join(lines), encoding="utf-8")  # no newline after the last line
    assert data.stat().st_size > 4 * 3000
    res = both(load(FOLDER.replace(', format="alpaca"', "").format(data=data)), tmp_path)
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
    aside = (tmp_path / "o-ray" / "set_aside.jsonl").read_text()
    assert "big.jsonl:13: malformed JSON" in aside and "big.jsonl:81: malformed JSON" in aside
    rows_of = _read_rows(res["ray"], tmp_path)
    assert (np.diff(rows_of) > 0).all()
    assert (rows_of.max() >= 3 << 40) != extra_column  # spans in tasks, or one reader on the driver


def test_one_large_parquet_file_is_read_in_runs_of_row_groups_with_the_same_answer(tmp_path, monkeypatch):
    """A Parquet file larger than RECIPE_RAY_READ_BYTES is read by tasks, a run of row groups each
    (first row indices from the file's metadata), with the whole file's ids and set-aside rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    monkeypatch.setenv("RECIPE_RAY_READ_BYTES", "2000")
    rows = alpaca_rows(90, dup_every=4)
    rows[17]["instruction"] = ""  # set aside by the record reader, inside one run
    data = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data, row_group_size=10)
    assert data.stat().st_size > 3 * 2000
    res = both(load(FOLDER.format(data=data)), tmp_path)
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
    assert "raw:17" in (tmp_path / "o-ray" / "set_aside.jsonl").read_text()
    rows_of = _read_rows(res["ray"], tmp_path)
    assert (np.diff(rows_of) > 0).all() and rows_of.max() >= 2 << 40  # read in runs of row groups


def test_a_read_task_that_meets_bad_input_fails_as_the_duckdb_engine_does(tmp_path, monkeypatch):
    """A user's error raised inside a task (bad UTF-8 in the second file of a folder) reaches the
    user as the DuckDB engine words it, not wrapped in Ray's task error, and the cache stays usable."""
    from recipe.diagnostics import RecipeError, UserError
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.csv").write_text("instruction,input,output\nhello there,,a fine answer here\n")
    # past the rows `check` reads of a later file: the task meets it, not the check
    good = "".join(f"row {i},,answer {i}\n" for i in range(1000)).encode()
    (d / "b.csv").write_bytes(b"instruction,input,output\n" + good + b"bad \xff text,,another fine answer\n")
    monkeypatch.setenv("RECIPE_RAY_READ_BYTES", "10")
    r = load(f'recipe bad\nsource raw = read("{d}", format="alpaca")\nwrite raw to "x.jsonl"\n')
    said = {}
    for eng in ("duckdb", "ray"):
        with pytest.raises(UserError) as e:
            r.run(out=tmp_path / f"o-{eng}", cache_dir=tmp_path / f"c-{eng}", engine=eng)
        said[eng] = str(e.value)
    assert said["ray"] == said["duckdb"] and f"b.csv: invalid UTF-8 at byte {29 + len(good)} (line 1002)" in said["ray"]
    (d / "b.csv").write_text("instruction,input,output\nfixed text,,another fine answer\n")
    assert r.run(out=tmp_path / "o-ray", cache_dir=tmp_path / "c-ray", engine="ray").manifest["sinks"][0]["rows"] == 2
    # a bad byte in the rows `check` reads stops the recipe before anything runs, on both engines
    (d / "b.csv").write_bytes(b"instruction,input,output\nbad \xff text,,another fine answer\n")
    with pytest.raises(RecipeError, match=r"b.csv: invalid UTF-8 at byte 29 \(line 2\)"):
        r.check()


def test_pieces_report_progress_as_each_finishes(tmp_path):
    """`ray_map(..., on_done=)` hands each piece's result over as the piece finishes (the read
    step's progress: rows read so far), and still returns every result in order."""
    from recipe.engine.ray_read import count_span, spans
    from recipe.engine.ray_store import start_ray
    from recipe.engine.ray_table import ray_map
    start_ray()
    f = tmp_path / "t.jsonl"
    f.write_text("".join(f'{{"i": {i}}}\n' if i % 5 else "\n" for i in range(100)))
    seen = []
    got = ray_map(count_span, [(str(f), a, b) for a, b in spans(f, 3)], on_done=seen.append)
    assert sorted(seen) == sorted(got) and len(seen) == 3
    assert sum(n for n, _ in got) == 100 and sum(r for _, r in got) == 80


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_cluster_started_with_ray_start_runs_a_recipe_through_ray_client(tmp_path):
    """A head node started apart from the run (`ray start --head`, as on a cluster) and
    `--address ray://HOST:PORT` (Ray Client, with the cluster's token when it has one): the
    same bytes as the DuckDB engine."""
    from conftest import stop_ray
    stop_ray()  # no local instance of this process in the way
    ray_bin = str(Path(sys.executable).parent / "ray")
    client = _free_port()
    subprocess.run([ray_bin, "start", "--head", f"--port={_free_port()}", f"--ray-client-server-port={client}",
                    "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True, timeout=180)
    try:
        rows = alpaca_rows(120, dup_every=5)
        data = write_jsonl(tmp_path / "d.jsonl", rows)
        f = tmp_path / "c.recipe"
        f.write_text(f'recipe c\nsource raw = read("{data}")\nclean = raw | filter(length(response) > 3)\n'
                     f'  | dedupe(method="exact", on=instruction) | dedupe(method="minhash", on=response, threshold=0.7)\n'
                     f'write clean to "clean.jsonl"\n')
        env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
        for eng, extra in (("duckdb", []), ("ray", ["--engine", "ray", "--address", f"ray://127.0.0.1:{client}"])):
            p = subprocess.run([sys.executable, "-m", "recipe", "run", str(f), "--out", str(tmp_path / eng),
                                "--cache-dir", str(tmp_path / f"c-{eng}"), "--quiet", *extra],
                               capture_output=True, text=True, timeout=300, env=env)
            assert p.returncode == 0, p.stderr[-2000:]
        for name in ("clean.jsonl", "set_aside.jsonl"):
            assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "duckdb" / name).read_bytes()
        assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["engine"] == "ray"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=180)


def test_nested_values_come_out_as_values_on_both_engines(tmp_path, monkeypatch):
    """A JSON column (objects, lists of numbers) read by tasks in spans, filtered, unioned with a
    branch that holds the field as text, its fields read by a filter and a derive, and written:
    the DuckDB engine's bytes, values intact."""
    monkeypatch.setenv("RECIPE_RAY_READ_BYTES", "2000")
    rows = [dict(r, meta={"i": i, "tags": ["x", i]}) for i, r in enumerate(alpaca_rows(40))]
    data = write_jsonl(tmp_path / "n.jsonl", rows)
    text = write_jsonl(tmp_path / "t.jsonl", [{"instruction": "Plain?", "output": "Yes.", "meta": "just text"}])
    from test_compressed import zstd_bytes  # a compressed source, and compressed sinks below
    text = tmp_path / "t.jsonl.zst"
    text.write_bytes(zstd_bytes((tmp_path / "t.jsonl").read_bytes()))
    res = both(load(f'recipe n\nsource raw = read("{data}")\nsource other = read("{text}")\n'
                    f'kept = raw | filter(length(response) > 52)\nall = union(kept, other)\n'
                    f'none = raw | filter(length(response) > 9999)\n'
                    f'late = raw | filter(number(meta.i) >= 30) | derive(tags = meta.tags)\n'
                    f'write all to "all.jsonl"\nwrite all to "all.parquet"\nwrite none to "none.parquet"\n'
                    f'write late to "late.jsonl"\nwrite all to "all.jsonl.gz"\nwrite late to "late.csv.zst"\n'), tmp_path)
    # Parquet sinks too: a list's item field is `element` whichever engine wrote it (until
    # session 26 DuckDB's `l` and Ray's `element` made different bytes of the same rows)
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
    got = [json.loads(line)["meta"] for line in (tmp_path / "o-ray" / "all.jsonl").read_text().splitlines()]
    assert got[-1] == "just text" and len(got) > 2
    assert all(isinstance(m, dict) and m["tags"] == ["x", m["i"]] for m in got[:-1])
    # a field of a nested value (`meta.i`), in a filter and a derive: read as its JSON text
    late = [json.loads(line) for line in (tmp_path / "o-ray" / "late.jsonl").read_text().splitlines()]
    assert [(r["meta"]["i"], r["tags"]) for r in late] == [(i, f'["x",{i}]') for i in range(30, 40)]


def test_a_head_read_gives_the_same_first_records_on_both_engines(tmp_path, monkeypatch):
    """`head` is a sequence's first records: the Ray engine reads such a source in one task
    (not in byte spans or a task per file), with the DuckDB engine's rows and ids."""
    monkeypatch.setenv("RECIPE_RAY_READ_BYTES", "500")
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(3):
        write_jsonl(folder / f"p{i}.jsonl", alpaca_rows(8))
    res = both(load(f'recipe h\nsource raw = read("{folder}", head=11)\nwrite raw to "x.jsonl"\n'), tmp_path)
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert res["ray"].manifest["nodes"][0]["rows_out"] == 11


def test_sharded_sinks_are_the_same_on_both_engines(tmp_path):
    """A shard's rows are read from the blocks that hold them (7-row blocks here: shards of 10
    and 8 rows cross their bounds); the files are the DuckDB engine's, byte for byte."""
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(23))
    res = both(load(f'recipe s\nsource raw = read("{data}")\nkept = raw | filter(length(instruction) > 0)\n'
                    f'write kept to "p.parquet" (shard_rows=10)\nwrite kept to "a.jsonl" (shards=3)\n'
                    f'write kept to "c.csv" (shards=2, format="alpaca")\n'), tmp_path)
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert sorted(outputs(tmp_path / "o-ray")) == sorted(
        ["set_aside.jsonl"] + [f"p-{i:05d}-of-00003.parquet" for i in range(3)]
        + [f"a-{i:05d}-of-00003.jsonl" for i in range(3)] + [f"c-{i:05d}-of-00002.csv" for i in range(2)])
    assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
    assert [[f["rows"] for f in s["files"]] for s in res["ray"].manifest["sinks"]] == [[10, 10, 3], [7, 8, 8], [11, 12]]


def test_redacted_and_normalized_turns_are_the_same_on_both_engines(tmp_path, monkeypatch):
    """`redact` (and `normalize`, through the same rewriting, and `split_turns`) rewrites `messages` (several turns, a system prompt), `instruction`, `response`
    and an alpaca `input` column: Ray's blocks (two-turn conversations stored as a flag) must
    come out as the DuckDB engine's."""
    rows = []
    for i in range(20):
        rows.append({"instruction": f"Forward note {i}." if i % 3 else "Hi",
                     "input": f"From: user{i}@gmail.com" if i % 2 else "No input." if i % 4 == 2 else "",
                     "output": f"Sent from 81.2.69.{i + 10}.  \n\n\n" if i % 4 else "Ok \u00e2\u20ac\u201c fine", "history": [["Who?", "me@corp.io"]] if i % 5 == 0 else [],
                     "system": "Mail ops@acme-corp.com" if i % 7 == 0 else ""})
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nsource raw = read("{data}", format="alpaca")\nx = raw | redact()\n'
                 'd = raw | redact(drop=true, kinds=["ip"])\nn = x | normalize()\np = raw | split_turns(max_tokens=9)\n'
                 'q = raw | normalize(unicode=false, whitespace=false, placeholder_input=true)\n'
                 'write x to "x.jsonl"\nwrite x to "x.json" (format="alpaca")\nwrite d to "d.jsonl"\nwrite n to "n.jsonl"\n'
                 'write p to "p.jsonl"\nwrite q to "q.json" (format="alpaca")\n')
    res = both(load(str(f)), tmp_path)
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
    assert b"@gmail.com" not in (tmp_path / "o-ray" / "x.json").read_bytes()
    q = json.loads((tmp_path / "o-ray" / "q.json").read_text())
    assert sum(r["input"] == "No input." for r in rows) == 5 and not any(r["input"] == "No input." for r in q)


def test_results_in_the_cache_start_no_actor(tmp_path, monkeypatch):
    """The driver looks model results up in the result cache and writes them there itself;
    actors only compute what is missing (tests/test_stdlib.py's qdit and superfiltering runs
    compute on actors). A Ray run after a DuckDB run on the same result cache starts no
    actor, loads no model and writes the same bytes."""
    from conftest import tiny_chat_lm
    from recipe.engine.ray_models import ModelPool
    from recipe.runtime import ModelRuntime
    tiny_chat_lm(tmp_path / "lm")
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(10))
    r = load(f'recipe r\nmodel lm = causal_lm("{tmp_path / "lm"}", dtype="fp32")\nsource raw = read("{data}")\n'
             's = raw | score(metric="perplexity", model=lm)\nwrite s to "s.jsonl"\n')
    r.run(out=tmp_path / "o-duck", cache_dir=tmp_path / "c-duck", runtime=ModelRuntime(tmp_path / "m"))
    monkeypatch.setattr(ModelPool, "_actors", lambda *a: pytest.fail("an actor pool started for cached results"))
    cached = r.run(out=tmp_path / "o-ray", cache_dir=tmp_path / "c-ray", engine="ray", replicas=2,
                   runtime=ModelRuntime(tmp_path / "m"))
    (st,) = cached.manifest["model_runtime"].values()
    assert st["requests"] == st["cache_hits"] == 10 and st["computed"] == 0 and st["loads"] == 0
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duck")


def test_answers_are_the_same_on_both_engines(tmp_path, monkeypatch):
    """`respond` on Ray: prompts sharded over two model actors, rounds of turns, rows set aside
    (a cut-off answer, a prompt too long) as on the DuckDB engine."""
    from conftest import tiny_chat_lm, tiny_reward
    tiny_chat_lm(tmp_path / "lm")
    tiny_reward(tmp_path / "rm")
    long = " ".join(f"w{i % 40}" for i in range(60))
    # "w1 w18": this seed's model ends its answer (with its end token) within 8 tokens; most run on
    rows = [{"turns": [f"w{i} w{i + 1}", f"w{i + 2}"] if i % 3 else [f"w{i}"]} for i in range(9)] + [{"turns": [long]},
                                                                                                   {"turns": ["w1 w18"]}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nmodel lm = causal_lm("{tmp_path / "lm"}", dtype="fp32")\nmodel rm = reward("{tmp_path / "rm"}", replicas=1)\n'
                 f'source raw = read("{data}")\n'
                 'a = raw | respond(model=lm, turns=turns, max_new_tokens=8)\n'
                 'b = raw | respond(model=lm, turns=turns, max_new_tokens=6, keep_truncated=true)\n'
                 'c = raw | respond(model=lm, turns=turns, max_new_tokens=6, keep_truncated=true, candidates=3, pick=rm, '
                 'temperature=1.0)\nd = b | respond(model=lm, replace=true, all_turns=true, max_new_tokens=5, '
                 'keep_truncated=true)\nwrite a to "a.jsonl"\nwrite b to "b.jsonl"\nwrite c to "c.jsonl"\n'
                 'write d to "d.jsonl"\n')
    res = both(load(str(f)), tmp_path)
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
    node = {n["name"]: n for n in res["ray"].manifest["nodes"]}
    assert node["b"]["rows_out"] == 10 and 0 < node["a"]["rows_set_aside"] < 11 and node["d"]["rows_out"] == 10


def test_bootstrapped_instructions_are_the_same_on_both_engines(tmp_path):
    """`self_instruct` (a global step creating rows) through a server on both engines."""
    import task_server
    srv, url = task_server.start()
    try:
        data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(12))
        r = load(f'recipe r\nmodel lm = causal_lm("openai:{url}#toy")\nsource raw = read("{data}")\n'
                 'g = raw | self_instruct(model=lm, n=6, prompts_per_round=2, per_prompt=5)\nwrite g to "g.jsonl"\n'
                 'i = g | instances(model=lm)\nwrite i to "i.jsonl"\n')
        res = both(r, tmp_path)
        assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
        assert counts(res["ray"].manifest) == counts(res["duckdb"].manifest)
        node = {n["name"]: n for n in res["ray"].manifest["nodes"]}
        assert node["g"]["stats"]["made"] == 6 and node["i"]["stats"]["instances"] == 12  # two for each task
    finally:
        srv.shutdown()


def test_conversation_reads_every_turn_where_no_column_has_the_name(tmp_path):
    """`conversation` in a row expression: the turns as `role: content` lines (a system turn
    and a joined input included), on both engines; a column of that name is read as itself."""
    rows = [{"instruction": "Say hi", "input": "to Ann", "output": "Hi Ann", "system": "Be kind."},
            {"instruction": "Add 2 and 2", "input": "", "output": "4"}]
    d = tmp_path / "d.jsonl"
    d.write_text("".join(json.dumps(r) + "\n" for r in rows))
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nsource raw = read("{d}", format="alpaca")\n'
                 'a = raw | filter(contains(conversation, "system: Be kind.")) | derive(t = conversation)\n'
                 'write a to "a.jsonl" (columns=["t"])\n')
    for engine in ("duckdb", "ray"):
        load(str(f)).run(out=tmp_path / engine, cache_dir=tmp_path / f"c-{engine}", engine=engine)
        got = [json.loads(x) for x in (tmp_path / engine / "a.jsonl").read_text().splitlines()]
        assert got == [{"_id": "raw:0", "t": "system: Be kind.\nuser: Say hi\n\nto Ann\nassistant: Hi Ann"}]
    own = tmp_path / "own.jsonl"
    own.write_text(json.dumps({"instruction": "q", "output": "a", "conversation": "mine"}) + "\n")
    f.write_text(f'recipe r\nsource raw = read("{own}", format="alpaca")\na = raw | derive(t = conversation)\n'
                 'write a to "a.jsonl" (columns=["t"])\n')
    load(str(f)).run(out=tmp_path / "own", cache_dir=tmp_path / "c-own")
    assert json.loads((tmp_path / "own" / "a.jsonl").read_text())["t"] == "mine"


def test_a_conversation_made_from_lists_is_the_same_on_both_engines(tmp_path):
    """MT-Bench's layout: questions (`turns`) and answers in another file (`choices.1.turns`,
    a list inside a list of objects), joined on an id and made into one conversation by
    `interleave`; a missing answer leaves an empty turn (said), a trailing one is left out."""
    qs = [{"question_id": 1, "turns": ["Name a colour.", "And another?"]},
          {"question_id": 2, "turns": ["Count to two.", "Now to three.", "And four?"]},
          {"question_id": 3, "turns": ["Hello?"]}]
    ans = [{"question_id": 1, "choices": [{"index": 0, "turns": ["Red.", "Blue."]}]},
           {"question_id": 2, "choices": [{"index": 0, "turns": ["1 2", None, "1 2 3 4"]}]},
           {"question_id": 3, "choices": [{"index": 0, "turns": []}]}]
    q, a = write_jsonl(tmp_path / "q.jsonl", qs), write_jsonl(tmp_path / "a.jsonl", ans)
    # and a system prompt and an Alpaca input rewritten in the turns (two-turn rows: Ray's
    # blocks store them as a flag)
    al = write_jsonl(tmp_path / "al.jsonl", [{"instruction": f"Task {i}.", "input": f"in {i}" if i % 2 else "",
                                              "output": "Done."} for i in range(6)])
    res = both(load(f'recipe mt\nsource q = read("{q}", format="raw")\nsource a = read("{a}", format="raw")\n'
                    f'source al = read("{al}")\n'
                    'chats = q\n  | join(right=a, on=question_id, columns=[choices])\n'
                    '  | derive(conversation = interleave(turns, choices.1.turns), n = num_tags(choices.1.turns))\n'
                    'fixed = al | derive(input = upper(input), system = concat("Be brief.", system))\n'
                    'write chats to "c.jsonl" (format="sharegpt")\nwrite chats to "all.jsonl"\n'
                    'write fixed to "f.jsonl" (format="alpaca")\nwrite fixed to "f.parquet"\n'), tmp_path)
    assert [(r["input"], r["system"]) for r in map(json.loads, (tmp_path / "o-ray" / "f.jsonl").read_text().splitlines())] \
        == [("" if i % 2 == 0 else f"IN {i}", "Be brief.") for i in range(6)]
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o-duckdb")
    got = [[(t["from"], t["value"]) for t in json.loads(x)["conversations"]]
           for x in (tmp_path / "o-ray" / "c.jsonl").read_text().splitlines()]
    assert got == [[("human", "Name a colour."), ("gpt", "Red."), ("human", "And another?"), ("gpt", "Blue.")],
                   [("human", "Count to two."), ("gpt", "1 2"), ("human", "Now to three."), ("gpt", ""),
                    ("human", "And four?"), ("gpt", "1 2 3 4")],
                   [("human", "Hello?")]]
    rows = [json.loads(x) for x in (tmp_path / "o-ray" / "all.jsonl").read_text().splitlines()]
    assert [(r["instruction"], r["response"], r["n"]) for r in rows] == [
        ("Name a colour.", "Red.", 2), ("Count to two.", "1 2", 3), ("Hello?", "", 0)]
    assert "conversation" not in rows[0]  # the turns, not a column
    for eng in ("duckdb", "ray"):
        assert res[eng].manifest["warnings"] == [
            "chats/derive: the conversation has an empty turn in 1 of 3 rows (a null or empty item): "
            "`filter(num_tags(turns) == num_tags(answers))` keeps the rows whose two lists are as long"]


def test_this_module_runs_in_the_one_worker_that_starts_ray(request):
    """Under `make test` (pytest-xdist, `--dist loadgroup`) every module that starts Ray is in
    one group, so one worker runs them one after another: a local instance on the other worker
    shared this machine's Ray processes, and `ray stop` in the cluster test took its GCS down
    (session 31's CI). pytest 9.2 with pytest-xdist 3.8 lost the group silently."""
    if not (os.environ.get("PYTEST_XDIST_WORKER") and request.config.getvalue("loadgroup")):
        pytest.skip("not under pytest-xdist's loadgroup")
    assert request.node.nodeid.endswith("@ray"), request.node.nodeid
