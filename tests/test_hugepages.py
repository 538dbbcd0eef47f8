"""numpy's huge-page advice is turned off where the kernel would compact memory at each
large allocation (recipe/hugepages.py), and left alone elsewhere."""
from numpy._core import multiarray

from recipe import hugepages


def test_modes_that_compact_at_fault_time():
    assert hugepages.stalls("always defer defer+madvise [madvise] never\n")
    assert hugepages.stalls("[always] defer defer+madvise madvise never")
    assert hugepages.stalls("always defer [defer+madvise] madvise never")
    assert not hugepages.stalls("always [defer] defer+madvise madvise never")
    assert not hugepages.stalls("always defer defer+madvise madvise [never]")


def test_configure_follows_the_kernel_setting_and_the_user(tmp_path, monkeypatch):
    was = multiarray._get_madvise_hugepage()
    try:
        monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
        f = tmp_path / "defrag"
        monkeypatch.setattr(hugepages, "DEFRAG", str(f))
        f.write_text("always [defer] defer+madvise madvise never\n")
        multiarray._set_madvise_hugepage(True)
        hugepages.configure()
        assert multiarray._get_madvise_hugepage()
        f.write_text("always defer defer+madvise [madvise] never\n")
        hugepages.configure()
        assert not multiarray._get_madvise_hugepage()
        multiarray._set_madvise_hugepage(True)
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")  # the user's word wins
        hugepages.configure()
        assert multiarray._get_madvise_hugepage()
    finally:
        multiarray._set_madvise_hugepage(was)
