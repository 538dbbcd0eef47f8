"""Run a function in a fresh process and report its seconds and peak RSS (MiB)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(module: str, func: str, **kwargs) -> dict:
    """`module` is a file in bench/, loaded by path."""
    code = (f"import json, resource, sys, time, importlib.util; sys.path.insert(0, {str(ROOT)!r}); sys.path.append({str(ROOT / 'bench')!r})\n"
            f"spec = importlib.util.spec_from_file_location('bench_{module}', {str(ROOT / 'bench' / (module + '.py'))!r})\n"
            "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
            f"f = getattr(mod, {func!r})\n"
            f"kw = json.loads({json.dumps(json.dumps(kwargs))})\n"
            "t = time.perf_counter(); out = f(**kw); secs = time.perf_counter() - t\n"
            "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
            "print(json.dumps({'seconds': secs, 'peak_mib': rss, 'result': out}))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])
