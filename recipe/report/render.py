"""The report page: Plotly figures with Plotly's JavaScript inlined once, so the page needs
no network when viewed; a content-security-policy forbids every request the page could make.
Each section has a fixed element id (the browser test looks for them)."""
from __future__ import annotations

import html
import json

from ..io.sinks import sink_shape
from ..ui import expectation_values
from .collect import Facts

SECTIONS = ("funnel", "timing", "distributions", "tags", "embedding-map", "samples", "provenance")
CSP = "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:.9em}
td,th{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left}.note{color:#666}
code{background:#f4f4f4;padding:0 .2em}"""


def render(f: Facts) -> str:
    import plotly.offline
    man = f.manifest
    parts = [f"<h1>recipe report: {_e(man.get('recipe', ''))}</h1>",
             f"<p class='note'>{_e(f.note)}</p>" if f.note else ""]
    if man.get("expectations"):  # first: what the recipe promised of its rows, met or not
        parts.append(_section("expectations", "Expectations", _expectations(man["expectations"])))
    parts += [_section("funnel", "Rows through each step", _funnel(man)),
              _section("timing", "Time, model calls and cache per step", _timing(man, f.usage)),
              _section("distributions", "Scores before and after each step that removed rows", _distributions(f)),
              _section("tags", "Tag frequencies in the written rows", _tags(f)),
              _section("embedding-map", "Kept and removed rows", _map(f)),
              _section("samples", "Sample rows per step", _samples(f)),
              _section("provenance", "Provenance", _provenance(man))]
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<title>recipe report: {_e(man.get('recipe', ''))}</title><style>{STYLE}</style>"
            f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>{''.join(parts)}</body></html>")


def _e(x) -> str:
    return html.escape(str(x))


def _section(sid: str, title: str, body: str) -> str:
    return f"<section id='{sid}'><h2>{_e(title)}</h2>{body}</section>"


def _fig(fig, div_id: str) -> str:
    fig.update_layout(margin=dict(l=40, r=20, t=40, b=40), height=380, template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False})


def _funnel(man: dict) -> str:
    import plotly.graph_objects as go
    nodes = man["nodes"]
    names = [n["name"] for n in nodes]
    fig = go.Figure([go.Bar(name="rows out", x=names, y=[n["rows_out"] for n in nodes]),
                     go.Bar(name="set aside", x=names, y=[n["rows_set_aside"] for n in nodes]),
                     go.Bar(name="created", x=names, y=[n.get("rows_created", 0) if n["op"] != "read" else 0 for n in nodes])])
    fig.update_layout(barmode="group", title="rows out, set aside and created, per step")
    rows = "".join(f"<tr><td>{_e(n['name'])}</td><td>{_e(n['op'])}</td><td>{n['rows_in']:,}</td>"
                   f"<td>{n['rows_out']:,}</td><td>{n['rows_set_aside']:,}</td></tr>" for n in nodes)
    from ..manifest import sink_shown
    sinks = "".join(f"<li><code>{_e(sink_shown(s))}</code>: {s['rows']:,} rows ({_e(sink_shape(s['path'], s['format']).removeprefix('rows, '))}"
                    + (f", {len(s['files'])} files" if s.get("files") else "") + ")</li>"
                    for s in man.get("sinks", []))
    return (_fig(fig, "funnel-chart") + "<table><tr><th>step</th><th>op</th><th>rows in</th><th>rows out</th>"
            f"<th>set aside</th></tr>{rows}</table><p>written:</p><ul>{sinks}</ul>")


def _timing(man: dict, usage: dict) -> str:
    import plotly.graph_objects as go
    nodes = man["nodes"]
    fig = go.Figure(go.Bar(x=[n["name"] for n in nodes], y=[n["seconds"] for n in nodes],
                           marker_color=["#9bbcd9" if n.get("cached") else "#2a6fb0" for n in nodes],
                           text=["cached" if n.get("cached") else "ran" for n in nodes]))
    fig.update_layout(title="seconds per step (light: served from the step cache)", yaxis_title="seconds")
    hits = sum(1 for n in nodes if n.get("cached"))
    models = "".join(f"<li><code>{_e(k)}</code>: {_e(m.get('kind'))} {_e(m.get('source'))}</li>"
                     for k, m in man.get("models", {}).items())
    calls = "".join(f"<tr><td>{_e(n['name'])}</td><td>{u.get('requests', 0):,}</td><td>{u.get('computed', 0):,}</td>"
                    f"<td>{u.get('tokens', 0):,}</td><td>{u.get('seconds', 0):.1f}</td></tr>"
                    for n in nodes if (u := usage.get(n["name"])))
    table = ("<table><tr><th>step</th><th>model requests</th><th>computed (not from the result cache)</th>"
             f"<th>tokens</th><th>model seconds</th></tr>{calls}</table>") if calls else ""
    return (_fig(fig, "timing-chart") + table + f"<p>{hits} of {len(nodes)} steps came from the step cache.</p>"
            + (f"<p>models (each loaded once per run):</p><ul>{models}</ul>" if models else ""))


def _distributions(f: Facts) -> str:
    import plotly.graph_objects as go
    if not f.distributions:
        return "<p class='note'>no step removed rows by a numeric column" + \
            ("" if f.cached else " (or the step cache is not available)") + ".</p>"
    out = []
    for i, d in enumerate(f.distributions[:24]):
        fig = go.Figure([go.Histogram(x=d["before"], name=f"before ({len(d['before']):,})", opacity=0.6),
                         go.Histogram(x=d["after"], name=f"after ({len(d['after']):,})", opacity=0.6)])
        fig.update_layout(barmode="overlay", title=f"`{d['column']}` at step {d['step']}", height=300)
        out.append(_fig(fig, f"dist-{i}"))
    return "".join(out)


def _tags(f: Facts) -> str:
    import plotly.graph_objects as go
    if not f.tags:
        return "<p class='note'>no written step has a <code>tags</code> column.</p>"
    top = sorted(f.tags.items(), key=lambda kv: (-kv[1], kv[0]))[:40]
    fig = go.Figure(go.Bar(x=[k for k, _ in top], y=[v for _, v in top]))
    fig.update_layout(title="the 40 most frequent tags")
    return _fig(fig, "tags-chart")


def _map(f: Facts) -> str:
    import plotly.graph_objects as go
    m = f.embedding_map
    if not m:
        return "<p class='note'>no map: it needs the step cache and an <code>instruction</code> column.</p>"
    traces = []
    for flag, name, color in ((False, "removed", "#d62728"), (True, "kept", "#2ca02c")):
        at = [i for i, k in enumerate(m["kept"]) if k == flag]
        traces.append(go.Scattergl(x=[m["x"][i] for i in at], y=[m["y"][i] for i in at], mode="markers", name=name,
                                   text=[m["ids"][i] for i in at], marker=dict(size=5, color=color, opacity=0.6)))
    fig = go.Figure(traces)
    fig.update_layout(title=f"first two principal components of {m['source']}", height=480)
    return _fig(fig, "map-chart") + f"<p class='note'>{len(m['x']):,} rows of the first source, sampled evenly.</p>"


def _samples(f: Facts) -> str:
    out = []
    for n in f.manifest["nodes"]:
        name = n["name"]
        kept, removed = f.kept.get(name, []), f.removed.get(name, [])
        if not kept and not removed:
            continue
        out.append(f"<h3>{_e(name)} ({_e(n['op'])})</h3>")
        if removed:
            out.append("<p>removed:</p><table><tr><th>id</th><th>reason</th><th>instruction</th></tr>" + "".join(
                f"<tr><td>{_e(r['_id'])}</td><td>{_e(r['reason'])}</td><td>{_e(_short(r.get('instruction', '')))}</td></tr>"
                for r in removed) + "</table>")
        if kept:
            cols = list(kept[0])
            out.append("<p>kept (first rows):</p><table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_e(_short(r.get(c)))}</td>" for c in cols) + "</tr>" for r in kept)
                       + "</table>")
    return "".join(out) or "<p class='note'>no rows to show.</p>"


def _short(v, n: int = 160) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    return s if len(s) <= n else s[:n - 3] + "..."


def _expectations(found: list[dict]) -> str:
    rows = "".join(f"<tr><td>{'met' if e['ok'] else '<b>NOT MET</b>'}</td><td>{_e(e['node'])}</td>"
                   f"<td><code>{_e(('by ' + e['by'] + ': ') if e.get('by') else '')}{_e(e['expect'])}</code></td>"
                   f"<td>{_e(expectation_values(e))}</td><td>{_e(e['file'])}:{e['line']}</td></tr>" for e in found)
    return f"<table><tr><th></th><th>node</th><th>expectation</th><th>values</th><th>where</th></tr>{rows}</table>"


def _provenance(man: dict) -> str:
    shown = {k: man.get(k) for k in ("recipe", "recipe_hash", "params", "inputs", "models", "versions", "plugins", "warnings")
             if k != "plugins" or man.get(k)}
    return f"<pre>{_e(json.dumps(shown, indent=2, ensure_ascii=False))}</pre>"
