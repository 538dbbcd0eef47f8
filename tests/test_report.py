"""`recipe report`: one self-contained HTML page with every section, and no network."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import alpaca_rows, write_jsonl
from recipe.api import load
from recipe.report import write_report
from recipe.report.render import SECTIONS


def _run(tmp_path, recipe: str):
    r = load(recipe)
    return r.run(out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True)


def _no_network(page: str) -> None:
    head = page[:page.index("<script>")]
    assert "Content-Security-Policy" in head and "default-src 'none'" in head  # the browser refuses requests
    outside_scripts = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", outside_scripts)


def test_report_has_every_section_and_makes_no_request(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(40, dup_every=5) + [{"instruction": 3, "output": "x"}])
    _run(tmp_path, f'''recipe t
source raw = read("{data}")
kept = raw
  | dedupe(method="exact")
  | derive(words=length(response))
  | filter(words > 52)
write kept to "k.jsonl"
''')
    path = write_report(tmp_path / "o", tmp_path / "c")
    page = path.read_text()
    for sid in SECTIONS:
        assert f"<section id='{sid}'>" in page
    _no_network(page)
    assert "id=\"dist-0\"" in page and "`words` at step kept" in page  # before/after the filter
    assert "duplicate of" in page and "field `instruction` is int" in page    # removed rows with reasons
    assert "hashed word counts; the recipe declares no embedding model" in page
    assert "kept/filter" in page and "rows out" in page


def test_report_without_the_step_cache_says_what_is_missing(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(6))
    _run(tmp_path, f'recipe t\nsource raw = read("{data}")\nx = raw | limit(n=3)\nwrite x to "x.jsonl"\n')
    page = write_report(tmp_path / "o", tmp_path / "nowhere").read_text()
    assert "the step cache is not available" in page
    for sid in SECTIONS:
        assert f"<section id='{sid}'>" in page


def _chromium() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.slow
def test_demo_report_renders_in_headless_chromium(tmp_path, model_cache):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed here (Debian: apt install chromium); the page was checked without it")
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    r = load("stdlib:qdit")
    r.run(params={"k": "40"}, sources={"raw": str(root / "examples" / "data" / "default.jsonl")},
          out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True, model_cache=model_cache)
    page = write_report(tmp_path / "o", tmp_path / "c", model_cache=model_cache)
    _no_network(page.read_text())
    assert "<th>model requests</th>" in page.read_text()  # the score and select steps' model calls
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom
    assert dom.count('class="plot-container') >= 4  # Plotly drew the charts (funnel, timing, scores, map)
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2400", page.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
