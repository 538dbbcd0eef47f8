"""numpy's huge-page advice is turned off where the kernel would compact memory at each
large allocation, and left alone elsewhere; Arrow's pool is jemalloc's (recipe/allocators.py)."""
import os
import subprocess
import sys

from numpy._core import multiarray

from recipe import allocators


def test_modes_that_compact_at_fault_time():
    assert allocators.stalls("always defer defer+madvise [madvise] never\n")
    assert allocators.stalls("[always] defer defer+madvise madvise never")
    assert allocators.stalls("always defer [defer+madvise] madvise never")
    assert not allocators.stalls("always [defer] defer+madvise madvise never")
    assert not allocators.stalls("always defer defer+madvise madvise [never]")


def test_configure_follows_the_kernel_setting_and_the_user(tmp_path, monkeypatch):
    was = multiarray._get_madvise_hugepage()
    try:
        monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
        f = tmp_path / "defrag"
        monkeypatch.setattr(allocators, "DEFRAG", str(f))
        f.write_text("always [defer] defer+madvise madvise never\n")
        multiarray._set_madvise_hugepage(True)
        allocators.numpy_hugepages()
        assert multiarray._get_madvise_hugepage()
        f.write_text("always defer defer+madvise [madvise] never\n")
        allocators.numpy_hugepages()
        assert not multiarray._get_madvise_hugepage()
        multiarray._set_madvise_hugepage(True)
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")  # the user's word wins
        allocators.numpy_hugepages()
        assert multiarray._get_madvise_hugepage()
    finally:
        multiarray._set_madvise_hugepage(was)


def test_arrow_uses_jemalloc_unless_the_user_chose():
    code = "import recipe, pyarrow as pa; print(pa.default_memory_pool().backend_name)"

    def pool(**env):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, **env}).stdout.strip()
    assert pool() == "jemalloc"
    assert pool(ARROW_DEFAULT_MEMORY_POOL="system") == "system"
