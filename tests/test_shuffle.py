"""shuffle: rows in a seeded random order given by a hash of each `_id`: a permutation, the
same run after run and on both engines, another for another seed, and stable as the pool
changes (a row removed leaves the others' relative order alone)."""
import json

import pyarrow as pa

from recipe.api import load
from recipe.ops.shuffle import id_order

from conftest import write_jsonl

ROWS = [{"instruction": f"Question {i}?", "output": f"answer {i}", "n": i} for i in range(40)]
TEXT = ('recipe s\nparam seed: int = 0\nsource raw = read("{data}")\n'
        'mixed = raw | filter(n != {drop}) | shuffle(seed=seed)\nwrite mixed to "m.jsonl"\n')


def _run(tmp_path, name, drop=-1, seed=0, engine="duckdb"):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    res = load(TEXT.format(data=data, drop=drop)).run(params={"seed": str(seed)}, out=tmp_path / name,
                                                     cache_dir=tmp_path / f"c-{engine}", engine=engine)
    lines = (tmp_path / name / "m.jsonl").read_text().splitlines()
    return [json.loads(x)["n"] for x in lines], res


def test_a_seeded_permutation_the_same_each_run_and_another_for_another_seed(tmp_path):
    order, res = _run(tmp_path, "a")
    assert sorted(order) == list(range(40)) and order != list(range(40))
    assert res.manifest["nodes"][-1]["rows_set_aside"] == 0
    again, _ = _run(tmp_path, "b")
    other, _ = _run(tmp_path, "c", seed=7)
    assert again == order and sorted(other) == sorted(order) and other != order
    # the first rows of a 40-row shuffle are not the first rows of the input
    assert len(set(order[:10]) & set(range(10))) < 8


def test_a_row_removed_leaves_the_others_in_their_order(tmp_path):
    order, _ = _run(tmp_path, "a")
    without, _ = _run(tmp_path, "b", drop=order[5])
    assert without == [n for n in order if n != order[5]]


def test_the_same_order_on_ray(tmp_path):
    duck, _ = _run(tmp_path, "d", seed=3)
    ray, _ = _run(tmp_path, "r", seed=3, engine="ray")
    assert ray == duck
    assert (tmp_path / "d" / "m.jsonl").read_bytes() == (tmp_path / "r" / "m.jsonl").read_bytes()


def test_the_order_is_by_the_ids_hash_whatever_their_positions():
    ids = [f"raw:{i}" for i in range(100)]
    order = id_order(pa.array(ids), 0)
    rev = id_order(pa.array(ids[::-1]), 0)
    assert [ids[i] for i in order] == [ids[::-1][i] for i in rev]
    assert id_order(pa.array([], pa.string()), 0).tolist() == []
    sliced = pa.array(["x"] + ids)[1:]  # an array with an offset
    assert id_order(sliced, 0).tolist() == order.tolist()
