"""Files' SHA-256 digests (recipe/digests.py): a large file's is remembered under its stat
(size, mtime, ctime, inode, device), so `recipe plan` and reruns over an unchanged large
source do not read it again, and any change to the file, an edit in place that keeps its size
and mtime included, is hashed again."""
import hashlib
import os

import recipe.digests as digests
from recipe.api import load


def _counted(monkeypatch) -> list:
    """Paths `digest` reads, in order (the memo's misses)."""
    read, real = [], digests.digest
    monkeypatch.setattr(digests, "digest", lambda p: read.append(p) or real(p))
    return read


def test_a_large_files_digest_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("RECIPE_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(digests, "REMEMBER_BYTES", 1000)
    monkeypatch.setattr(digests, "SETTLED_SECONDS", 0.0)
    big, small = tmp_path / "big.jsonl", tmp_path / "small.jsonl"
    big.write_bytes(b"a" * 5000)
    small.write_bytes(b"b" * 10)
    read = _counted(monkeypatch)
    want = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (big, small)]
    assert digests.file_digests([big, small]) == want and read == [big, small]
    assert digests.file_digests([big, small]) == want and read == [big, small, small]  # the small one: every time
    # an edit in place that keeps the size and puts the mtime back: its ctime moved
    st = big.stat()
    with open(big, "r+b") as fh:
        fh.write(b"z")
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert big.stat().st_mtime_ns == st.st_mtime_ns and big.stat().st_size == st.st_size
    assert digests.file_digests([big]) == [hashlib.sha256(big.read_bytes()).hexdigest()] != [want[0]]
    assert read[-1] == big
    # the same file under another path is looked up by its own resolved path
    link = tmp_path / "link.jsonl"
    link.symlink_to(big)
    n = len(read)
    assert digests.file_digests([link]) == digests.file_digests([big]) and len(read) == n


def test_a_file_written_moments_ago_is_not_remembered(tmp_path, monkeypatch):
    """On a file system with coarse timestamps a second write in the same tick would look
    unchanged (git's racy case): such a file is hashed again next time."""
    monkeypatch.setenv("RECIPE_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(digests, "REMEMBER_BYTES", 1000)
    f = tmp_path / "fresh.jsonl"
    f.write_bytes(b"c" * 5000)
    read = _counted(monkeypatch)
    digests.file_digests([f])
    digests.file_digests([f])
    assert read == [f, f]


def test_a_file_that_changes_while_it_is_hashed_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("RECIPE_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(digests, "REMEMBER_BYTES", 1000)
    monkeypatch.setattr(digests, "SETTLED_SECONDS", 0.0)
    f = tmp_path / "grows.jsonl"
    f.write_bytes(b"e" * 5000)
    real = digests.digest

    def hashed_then_appended(p):
        got = real(p)
        with open(p, "ab") as fh:  # a writer appends while the run reads
            fh.write(b"more")
        return got
    monkeypatch.setattr(digests, "digest", hashed_then_appended)
    digests.file_digests([f])
    monkeypatch.setattr(digests, "digest", real)
    read = _counted(monkeypatch)
    assert digests.file_digests([f]) == [hashlib.sha256(f.read_bytes()).hexdigest()] and read == [f]


def test_a_corrupt_or_unwritable_memo_only_costs_a_read(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("RECIPE_CACHE_HOME", str(home))
    monkeypatch.setattr(digests, "REMEMBER_BYTES", 1000)
    monkeypatch.setattr(digests, "SETTLED_SECONDS", 0.0)
    f = tmp_path / "d.jsonl"
    f.write_bytes(b"d" * 5000)
    home.mkdir()
    (home / "digests.json").write_text("{not json")
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert digests.file_digests([f]) == [want]
    (home / "digests.json").write_text('{"%s": [1, 2, 3]}' % f.resolve())  # an entry of another shape
    assert digests.file_digests([f]) == [want]
    assert digests.file_digests([f]) == [want]


def test_a_run_and_its_manifest_use_the_remembered_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("RECIPE_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(digests, "REMEMBER_BYTES", 1000)
    monkeypatch.setattr(digests, "SETTLED_SECONDS", 0.0)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"instruction": "q{i}", "output": "a{i}"}}\n' for i in range(200)))
    text = f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n'
    read = _counted(monkeypatch)
    first = load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    again = load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert read == [data]  # the second run found it remembered
    want = hashlib.sha256(data.read_bytes()).hexdigest()
    assert first.manifest["inputs"]["raw"]["sha256"] == again.manifest["inputs"]["raw"]["sha256"] == want
    assert [n["cached"] for n in again.manifest["nodes"]] == [True]
