"""The OpenAI-compatible endpoint backend, against a small server on loopback that speaks the
protocol (embeddings, completions with echo+logprobs, chat completions) and fails once."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from recipe.diagnostics import UserError
from recipe.runtime import ModelRuntime


class Handler(BaseHTTPRequestHandler):
    calls = {"n": 0, "fail_next": True, "prompts": []}

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.calls["n"] += 1
        if Handler.calls["fail_next"]:  # the client must retry a 503
            Handler.calls["fail_next"] = False
            self.send_response(503)
            self.end_headers()
            return
        if self.path.endswith("/embeddings"):
            data = [{"index": i, "embedding": [float(len(t)), 1.0, float(t.count("a"))]} for i, t in enumerate(body["input"])]
            out = {"data": data}
        elif self.path.endswith("/completions") and "chat" not in self.path:
            Handler.calls["prompts"].append(body["prompt"])
            texts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            out = {"choices": []}
            for i, text in enumerate(texts[::-1]):  # out of order: the client sorts by index
                toks = text.split(" ")
                offs, lps, pos = [], [], 0
                for t in toks:
                    offs.append(pos)
                    lps.append(-0.5 * len(t))
                    pos += len(t) + 1
                lps[0] = None
                out["choices"].append({"index": len(texts) - 1 - i,
                                       "logprobs": {"text_offset": offs, "token_logprobs": lps}})
        elif body.get("logprobs"):
            out = {"choices": [{"message": {"content": "4"}, "logprobs": {"content": [{"token": "4", "logprob": -0.1,
                   "top_logprobs": [{"token": "4", "logprob": -0.1}, {"token": " 5", "logprob": -2.5},
                                    {"token": "x", "logprob": -3.0}]}]}}]}
        else:
            Handler.calls.setdefault("chats", []).append(body["messages"])
            Handler.calls["last"] = body
            msg = body["messages"][0]["content"]
            # a message asking for a long answer runs to the token limit (as a server says it)
            end = "length" if "long" in msg else "stop"
            out = {"choices": [{"message": {"content": f"echo {msg} #{i}"}, "finish_reason": end}
                               for i in range(body.get("n", 1))]}
        raw = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def decl(kind, url):
    opts = {"retries": 2} | ({"echo": True} if kind == "causal_lm" else {})  # the toy server echoes
    return {"kind": kind, "source": f"openai:{url}#toy", "options": opts, "identity": f"{kind}:{url}"}


def test_endpoint_embed_loglik_generate_cached(server, tmp_path):
    rt = ModelRuntime(tmp_path)
    e = rt.embed(decl("embedding", server), ["aa", "b", "aa"])
    assert e.shape == (3, 3) and np.allclose(np.linalg.norm(e, axis=1), 1) and np.allclose(e[0], e[2])
    ll = rt.loglik(decl("causal_lm", server), ["say", "say"], [" hello world", " hi"])
    # prompt "say" is skipped; continuation tokens "hello" (-2.5) and "world" (-2.5)
    assert ll[0] == {"logprob": -5.0, "tokens": 2} and ll[1] == {"logprob": -1.0, "tokens": 1}
    lm = decl("causal_lm", server)
    g = rt.generate(lm, [rt.chat_prompt(lm, "p1")], n=2, max_new_tokens=5)
    assert g == [["echo p1 #0", "echo p1 #1"]]
    p = rt.choice_probs(lm, [rt.chat_prompt(lm, "rate this")], ["1", "4", "5"])
    assert np.allclose(p, [[0.0, np.exp(-0.1), np.exp(-2.5)]])
    before = Handler.calls["n"]
    assert rt.generate(lm, [rt.chat_prompt(lm, "p1")], n=2, max_new_tokens=5) == g
    assert Handler.calls["n"] == before  # served from the cache


def test_completions_go_in_lists_where_the_server_takes_them(server, tmp_path):
    lm = decl("causal_lm", server)
    lm["options"]["batch"] = 4
    Handler.calls["prompts"].clear()
    pairs = [(f"p{i}", " a" * (i + 1)) for i in range(6)]
    ll = ModelRuntime(tmp_path).loglik(lm, [p for p, _ in pairs], [c for _, c in pairs])
    assert [r["tokens"] for r in ll] == [1, 2, 3, 4, 5, 6] and ll[5]["logprob"] == -3.0
    # two requests, sent together (in flight at once, so they may arrive in either order)
    assert sorted(len(p) for p in Handler.calls["prompts"]) == [2, 4]


def test_respond_sends_an_endpoint_the_conversation_so_far(server, tmp_path):
    """Without a local tokenizer the server applies its own template: `respond` sends the turns,
    each later turn with the answers before it."""
    from recipe.api import load
    from conftest import read_jsonl, write_jsonl
    data = write_jsonl(tmp_path / "q.jsonl", [{"question_id": 1, "turns": ["q one", "q two"]}])
    Handler.calls["chats"] = []
    load(f'recipe r\nmodel lm = causal_lm("openai:{server}#toy", retries=2)\nsource q = read("{data}")\n'
         'a = q | respond(model=lm, turns=turns, system="be brief")\nwrite a to "a.jsonl"\n'
         ).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    system = {"role": "system", "content": "be brief"}
    assert Handler.calls["chats"] == [[system, {"role": "user", "content": "q one"}],
                                      [system, {"role": "user", "content": "q one"},
                                       {"role": "assistant", "content": "echo be brief #0"},
                                       {"role": "user", "content": "q two"}]]
    (row,) = read_jsonl(tmp_path / "o" / "a.jsonl")
    assert row["messages"] == Handler.calls["chats"][1] + [{"role": "assistant", "content": "echo be brief #0"}]


def test_an_answer_the_server_cut_is_set_aside_whatever_its_length(server, tmp_path):
    """Without a local tokenizer the words of an answer say nothing of the server's tokens: the
    server's `finish_reason` tells a cut answer (counting words passed it until session 32)."""
    from recipe.api import load
    from conftest import read_jsonl, write_jsonl
    data = write_jsonl(tmp_path / "q.jsonl", [{"instruction": "a long essay"}, {"instruction": "a word"}])
    load(f'recipe r\nmodel lm = causal_lm("openai:{server}#toy", retries=2)\nsource q = read("{data}")\n'
         'a = q | respond(model=lm, max_new_tokens=64)\nwrite a to "a.jsonl"\n'
         ).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [r["response"] for r in read_jsonl(tmp_path / "o" / "a.jsonl")] == ["echo a word #0"]
    (aside,) = read_jsonl(tmp_path / "o" / "set_aside.jsonl")
    assert aside["reason"] == "respond: the answer was cut off at 64 tokens (raise max_new_tokens, or keep_truncated=true)"
    rt = ModelRuntime(tmp_path / "c2")
    lm = decl("causal_lm", server)
    assert rt.generate(lm, [rt.chat_prompt(lm, "long"), rt.chat_prompt(lm, "short")], ends=True) == [
        [["echo long #0", True]], [["echo short #0", False]]]


def test_stop_strings_go_to_the_server_and_cut_what_comes_back(server, tmp_path):
    rt = ModelRuntime(tmp_path)
    lm = decl("causal_lm", server)
    assert rt.generate(lm, [rt.chat_prompt(lm, "p1")], n=2, stop=[" #"]) == [["echo p1", "echo p1"]]
    assert Handler.calls["last"]["stop"] == [" #"]  # a server that honours it stops there itself


def test_unreachable_endpoint_is_a_clear_error(tmp_path):
    rt = ModelRuntime(tmp_path)
    d = {"kind": "embedding", "source": "openai:http://127.0.0.1:9/v1#x", "options": {"retries": 0}, "identity": "dead"}
    with pytest.raises(UserError, match=r"stayed down: ConnectError.*after 1 try of"):
        rt.embed(d, ["x"])


class Strict(BaseHTTPRequestHandler):
    """Needs the bearer key; answers 429 with Retry-After to the first request."""
    seen: list = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Strict.seen.append((time.monotonic(), self.headers.get("Authorization")))
        if self.headers.get("Authorization") != "Bearer s3cret":
            self.send_response(401)
            self.end_headers()
            return
        if len(Strict.seen) == 1:
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.end_headers()
            return
        raw = json.dumps({"data": [{"index": i, "embedding": [1.0, float(len(t))]}
                                   for i, t in enumerate(body["input"])]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def test_key_from_the_named_variable_and_retry_after_honoured(tmp_path, monkeypatch):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Strict)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    d = {"kind": "embedding", "source": f"openai:{url}#toy", "identity": "embedding:strict",
         "options": {"api_key_env": "TOY_KEY", "retries": 2}}
    try:
        monkeypatch.delenv("TOY_KEY", raising=False)
        with pytest.raises(UserError, match="TOY_KEY"):
            ModelRuntime(tmp_path / "c").embed(d, ["abc"])
        monkeypatch.setenv("TOY_KEY", "s3cret")
        Strict.seen.clear()
        e = ModelRuntime(tmp_path / "c2").embed(d, ["abc", "de"])
        assert e.shape == (2, 2) and abs(e[0, 1] / e[0, 0] - 3.0) < 1e-2  # [1, len("abc")], normalised, stored at half precision
        (t0, _), (t1, key) = Strict.seen[:2]
        assert key == "Bearer s3cret" and t1 - t0 >= 0.95  # waited as Retry-After said, not the 0.25 s backoff
    finally:
        srv.shutdown()


def test_rate_limit_spaces_requests(monkeypatch):
    from recipe.runtime.endpoint import Client
    ep = Client("http://127.0.0.1:9/v1", "toy", rate_limit=20)
    waits = [ep.slot() for _ in range(6)]
    assert waits[0] == 0 and waits[-1] >= 0.24  # 6 starts at 20 per second: 5 intervals of 50 ms
