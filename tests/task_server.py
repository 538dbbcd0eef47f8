"""A small OpenAI-compatible server on loopback that continues Self-Instruct prompts: for a
`/completions` prompt it writes numbered tasks, deterministic in the prompt: new tasks of
random words, a task asking for a picture, a three-word one, a copy of the prompt's first task,
and, after a blank line (the stop), one more that must never be read. It answers the
classification check and the instance prompts of `instances` too (`instance_continuation`)."""
from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = [f"{a}{b}" for a in ("tal", "mor", "ven", "sil", "dru", "ka", "pe", "lo") for b in
         ("ra", "nis", "to", "vel", "mu", "sa", "ko", "di", "fe", "gu")]


def alpaca_continuation(prompt: str) -> str:
    """Alpaca's layout: whole tasks between `###` lines, from the number the prompt ends with."""
    n = int(re.findall(r"(\d+)\. Instruction:$", prompt)[0])
    rng = random.Random(hashlib.sha256(prompt.encode()).hexdigest())
    words = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    tasks = [(words(9).capitalize() + ".", words(5), words(12)),
             ("Summarise the video in two sentences please.", "<noinput>", "A summary."),
             (words(8).capitalize() + "?", "<noinput>", ""),
             (words(10).capitalize() + ".", "<noinput>", words(7))]
    text = ""
    for k, (i, x, o) in enumerate(tasks):
        head = f" {i}" if k == 0 else f"###\n{n + k}. Instruction: {i}"
        text += f"{head}\n{n + k}. Input:\n{x}\n{n + k}. Output:\n{o}\n"
    return text


def instance_continuation(task: str) -> tuple[str, bool]:
    """Self-Instruct's instance prompts: (the answer, whether it ran to the token limit). By the
    task's words: "Classify" is a classification task (labels first), "broken" answers out of
    layout, "clash" gives one input two outputs, "long" runs to the limit; the others get a
    good example, a repeat of it, one whose output is its input, one ending in a colon."""
    if "endless" in task:
        return "Output: and on and on and on", True
    if "broken" in task:
        return "Sure! Here is what I think about that.", False
    if task.startswith("Classify"):
        return "Class label: Good\nSentence: a fine day\nClass label: Bad\nSentence: a grey day\n" \
               "Class label: Good\nSentence: a fine day\nClass label: Good\nSentence: a sunny day\n", False
    if "clash" in task:
        return "Example 1\nInput: 2\nOutput: 4\nExample 2\nInput: 2\nOutput: 5\n", False
    text = ("Example 1\nInput: one two\nOutput: two one\nExample 2\nInput: one two\nOutput: two one\n"
            "Example 3\nInput: same\nOutput: same\nExample 4\nInput: three\nOutput: the answer is:\n"
            "Example 5\nInput: four five\nOutput: five fo")
    return (text, True) if "long" in task else (text + "ur\n", False)


def continuation(prompt: str) -> str:
    return answer(prompt)[0]


def answer(prompt: str) -> tuple[str, bool]:
    """The continuation of a prompt and whether it ran to the token limit."""
    if prompt.endswith("Is it classification?"):
        task = prompt.rsplit("Task:", 1)[1]
        return (" Yes" if task.strip().startswith("Classify") else " No"), False
    if prompt.endswith("\n") and "\nTask:" in prompt:
        return instance_continuation(prompt.rsplit("Task:", 1)[1].strip())
    if prompt.rstrip().endswith("Instruction:"):
        return alpaca_continuation(prompt), False
    tasks = re.findall(r"^\d+\. (.*)$", prompt, re.M)
    rng = random.Random(hashlib.sha256(prompt.encode()).hexdigest())
    fresh = [" ".join(rng.choice(WORDS) for _ in range(9)).capitalize() + "." for _ in range(2)]
    n = len(tasks) + 1
    items = [fresh[0], "Draw a picture of a tall tree.", "Name three colours.", tasks[0], fresh[1]]
    text = " " + items[0] + "".join(f"\n{n + i}. {t}" for i, t in enumerate(items[1:], 1))
    return text + f"\n\n{n + len(items)}. Never read: after the blank line the model stopped.", False


class Handler(BaseHTTPRequestHandler):
    prompts: list = []
    chats: list = []  # the messages of each /chat/completions request

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/chat/completions"):  # the user's last turn is the prompt, answered as text is
            Handler.chats.append(body["messages"])
            text, cut = answer(body["messages"][-1]["content"])
            choice = {"index": 0, "message": {"role": "assistant", "content": text.strip()}}
        else:
            Handler.prompts.append(body["prompt"])
            text, cut = answer(body["prompt"])
            choice = {"index": 0, "text": text}
        raw = json.dumps({"choices": [choice | {"finish_reason": "length" if cut else "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def start() -> tuple[ThreadingHTTPServer, str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/v1"
