"""normalize: repair text in place: broken Unicode (mojibake, HTML entities, control characters,
CRLF line ends; ftfy) and untidy whitespace (trailing spaces, runs of blank lines, zero-width
spaces), as Data-Juicer's `fix_unicode_mapper` and `whitespace_normalization_mapper` do; and,
asked, HTML as Markdown (`algorithms/html_markdown.py`: FastChat's ShareGPT conversion), and
an input that only says there is none taken out of the row (`placeholder_input`).

Which texts: `ops/_turns.py` (by default every turn, and the `input`/`context` columns a user
turn was joined from). What each repair does and leaves alone: `algorithms/text_clean.py`.
Memory: the texts of one node.
"""
from __future__ import annotations

from collections import Counter

from . import _turns
from .base import Op, P


class Normalize(Op):
    name = "normalize"
    kind = "map"
    version = 1
    doc = "Repair broken Unicode (mojibake, HTML entities, control characters) and untidy whitespace in the text."
    params = (
        P("unicode", "bool", default=True, doc="ftfy's repairs: mojibake, HTML entities in text without HTML, "
                                               "control characters, CRLF, NFC (curly quotes and full-width forms stay)"),
        P("whitespace", "bool", default=True, doc="trailing spaces, runs of blank lines, zero-width spaces, and "
                                                  "each text trimmed (indentation stays)"),
        P("nfkc", "bool", default=False, doc="compatibility forms too: full-width letters, ligatures and "
                                             "superscripts as their plain forms (changes CJK and math text)"),
        P("html", "bool", default=False, doc="HTML turned into Markdown, as FastChat's clean_sharegpt did for "
                                             "ShareGPT's scraped pages (texts with an HTML tag only; first)"),
        P("placeholder_input", "bool", default=False,
          doc="an Alpaca `input` (Dolly `context`) that only says there is none (`<noinput>`, `No input`, "
              "`N/A`, `none`) taken out of the row and its user turn, as AlpacaDataCleaned did"),
        P("on", "column", default="conversation",
          doc="conversation (every turn, and the input/context columns), instruction, response, or a text column"),
    )

    def reads(self, args):
        return _turns.reads(args.get("on", "conversation"))

    def check(self, args):
        if not (args.get("unicode", True) or args.get("whitespace", True) or args.get("nfkc") or args.get("html")
                or args.get("placeholder_input")):
            return [("unicode", "every repair is off: the step would change nothing")]
        return []

    def run(self, ctx, args, inputs):
        from ..algorithms.text_clean import Cleaner, placeholder
        src = inputs[0]
        cleaner = Cleaner(args.get("unicode", True), args.get("whitespace", True), args.get("nfkc", False),
                          args.get("html", False))
        counts: Counter = Counter()

        def batches():  # the counts grow as add_columns reads the batches
            for new, done in _turns.rewrite(src, args.get("on", "conversation"), cleaner.clean,
                                            unjoin=placeholder if args.get("placeholder_input") else None):
                counts.update(k for d in done for k in set(d))
                yield new
        ctx.out.add_columns(src, _turns.stream(batches()))
        rejected = counts.pop("html_rejected", 0)
        if counts:
            ctx.info["rows changed"] = dict(sorted(counts.items()))
        if rejected:  # FastChat dropped such conversations; here the text stays, and it is said
            ctx.warn(f"{rejected} row(s) hold HTML the parser rejects: those texts are left as they were")


OP = Normalize()
