"""HTML turned into Markdown as FastChat turned ShareGPT's scraped ChatGPT pages into its
training text (fastchat/data/clean_sharegpt.py: `html_to_markdown`), for `normalize(html=true)`.

The steps are FastChat's: `<div ...>` and `<span ...>` openings dropped (inside a code block
they broke its indentation), markdownify, a code block's `pythonCopy code` label made its
fence's language, and the page's own noise removed (a `2 / 3` regenerate counter at the start,
`Copy12 chars / 3 words`, empty `Copy code` blocks). Only texts with an HTML tag are converted:
markdownify escapes `_` and `*` in plain text, which FastChat's data (all HTML) never had.
FastChat pinned markdownify 0.11.6; this is markdownify 1.x, whose output differs from it in
blank lines and keeps a `<pre>` block's indentation where 0.11.6 kept it only without `<div>`s.
"""
from __future__ import annotations

import re

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_DIV = re.compile("<div.*?>")
_SPAN = re.compile("<span.*?>")
_CODE_LANG = re.compile(r"```\s*(.*?)(?:Copy code)+(.+?)\s*?```", re.DOTALL)
_REGENERATE = re.compile(r"\d+ / \d+")
_COPY_CHARS = re.compile(r"Copy\d+ chars / \d+ words")
_COPY_CODE = re.compile(r"```(.*?)Copy code\s*```")


def has_html(text: str) -> bool:
    return _TAG.search(text) is not None


def html_to_markdown(text: str) -> str:
    """FastChat's conversion of one turn; the text as it is when it holds no HTML tag. Raises
    ValueError where the parser rejects the markup (FastChat dropped such conversations)."""
    if not has_html(text):
        return text
    import bs4
    import markdownify
    text = _SPAN.sub("", _DIV.sub("", text))
    try:
        text = markdownify.markdownify(text).strip()
    except (bs4.builder.ParserRejectedMarkup, AssertionError) as e:
        raise ValueError(f"HTML the parser rejects ({type(e).__name__})") from None
    text = _CODE_LANG.sub("```\\g<1>\n\\g<2>\n```", text)
    noise = _REGENERATE.search(text)
    if noise and noise.start() == 0:
        text = text[noise.end():]
    text = _COPY_CODE.sub("", _COPY_CHARS.sub("", text))
    return text.replace("\n\n\n", "\n").strip()
