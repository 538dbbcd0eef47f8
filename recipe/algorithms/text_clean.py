"""Text repairs for `normalize`: ftfy's fixes of broken Unicode (mojibake such as `â€™` for
`'`, HTML entities in text without HTML, control characters, CRLF line ends, NFC) and
whitespace tidying that keeps indentation.

Left as written on purpose: curly quotes, ligatures and full-width characters (ftfy would
straighten and narrow them by default: they are the author's text, and full-width forms are
ordinary in Chinese and Japanese), and zero-width joiners (Persian and Indic scripts need them).
"""
from __future__ import annotations

import re

_ZERO_WIDTH = re.compile("[\u200b\ufeff]")      # zero-width space, byte-order mark
_TRAILING = re.compile(r"[ \t]+$", re.M)
_BLANK_RUNS = re.compile(r"\n{3,}")
# what any of ftfy's fixes acts on in ASCII text: HTML entities, terminal escapes, CR line ends and
# the control characters it removes; ASCII text without them is returned as it came (most texts:
# a test checks the shortcut against ftfy itself)
_FTFY_ASCII = re.compile("[\x00-\x08\x0b-\x1f\x7f&]")


def ftfy_config(nfkc: bool = False):
    import ftfy
    return ftfy.TextFixerConfig(uncurl_quotes=False, fix_latin_ligatures=False, fix_character_width=False,
                                normalization="NFKC" if nfkc else "NFC", explain=False)


def tidy_whitespace(text: str) -> str:
    """Trailing spaces and tabs cut from each line, runs of blank lines made one, zero-width
    spaces and byte-order marks removed, the text trimmed; indentation stays."""
    if (" \n" not in text and "\t\n" not in text and "\n\n\n" not in text and "\u200b" not in text
            and "\ufeff" not in text and text == text.strip()):
        return text  # nothing to tidy: the substring tests cost a tenth of the regexes
    text = _ZERO_WIDTH.sub("", text)
    text = _TRAILING.sub("", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def fix_text(text: str, config) -> str:
    """`ftfy.fix_text(text, config)`, segment by segment as it goes (lines, or pieces of
    `max_decode_length`), with ftfy's own fixing skipped for a segment of ASCII text with
    nothing it acts on, which it returns as it came: a text with one accented word among many
    lines of ASCII was fixed line by line at ~50 us a line (P3's 55k rows: 9.3 s of ftfy). A
    `<` turns HTML unescaping off for the rest of the text, as in ftfy."""
    from ftfy import fix_and_explain
    out = []
    pos = 0
    while pos < len(text):
        textbreak = text.find("\n", pos) + 1 or len(text)
        if textbreak - pos > config.max_decode_length:
            textbreak = pos + config.max_decode_length
        segment = text[pos:textbreak]
        if config.unescape_html == "auto" and "<" in segment:
            config = config._replace(unescape_html=False)
        out.append(segment if segment.isascii() and not _FTFY_ASCII.search(segment) else fix_and_explain(segment, config)[0])
        pos = textbreak
    return "".join(out)


class Cleaner:
    def __init__(self, unicode: bool = True, whitespace: bool = True, nfkc: bool = False, html: bool = False):
        self.config = ftfy_config(nfkc) if unicode or nfkc else None
        self.whitespace = whitespace
        self.html = html

    def clean(self, text: str) -> tuple[str, list[str]]:
        """The repaired text and which repairs changed it (`html`, `unicode`, `whitespace`;
        `html_rejected` where the HTML parser refused the text, which stays as it was)."""
        done = []
        if self.html:  # first, as FastChat converted its pages before anything else
            from .html_markdown import html_to_markdown
            try:
                md = html_to_markdown(text)
            except ValueError:
                md = text
                done.append("html_rejected")
            if md != text:
                done.append("html")
                text = md
        if self.config is not None and not (text.isascii() and not _FTFY_ASCII.search(text)):
            fixed = fix_text(text, self.config)
            if fixed != text:
                done.append("unicode")
                text = fixed
        if self.whitespace:
            tidy = tidy_whitespace(text)
            if tidy != text:
                done.append("whitespace")
                text = tidy
        return text, done


# an input that only says there is none, as Alpaca-style data holds them (Stanford Alpaca's
# generator wrote `<noinput>`; the published 52k rows keep `No input`, `Noinput`, `<No Input>`,
# `N/A`, ...: about 1.5% of Cherry-LLM's Alpaca subset), quotes, brackets and escapes around it
_PLACEHOLDER = re.compile(r"""^[\s"'\\<(\[]*(?:no[\s_-]*inpute?(?:\s+(?:required|needed|provided|given))?|none|n/?a|null|nil"""
                          r"""|empty|not applicable|-+|\.+)[\s"'\\>)\].!]*$""", re.I)


def placeholder(text: str) -> bool:
    """Whether an input text only says there is no input (`<noinput>`, `No input.`, `N/A`)."""
    return len(text) < 40 and _PLACEHOLDER.match(text) is not None
