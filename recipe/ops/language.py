"""language: identify each row's language with a language_id model (fastText: lid.176 built in,
or GlotLID's model.bin), add it and the model's probability as two columns, and, with `keep`
or `min_score`, set aside the rows in other languages or identified with less confidence, as
Data-Juicer's `language_id_score_filter` and datatrove's `LanguageFilter` do.

By default the text is every turn of the conversation, contents only (a row whose answer is in
another language than its question is identified as the mix it is; the role names are left out,
since `user:` and `assistant:` are English words). Memory: the texts of one node.
"""
from __future__ import annotations

import pyarrow as pa

from .base import Op, P
from ..diagnostics import UserError, did_you_mean


class Language(Op):
    name = "language"
    kind = "map"
    describes_text = True
    version = 1
    doc = "Identify each row's language (a language_id model); add `language` and `language_score`, keep some."
    params = (
        P("model", "model", required=True, doc="a language_id model, e.g. `model lid = language_id(\"builtin:lid176\")`"),
        P("on", "column", default="conversation",
          doc="conversation (every turn's text), instruction, response, or a text column"),
        P("keep", "strs", doc="the languages to keep, as the model names them (lid.176: en, fr, zh, ...; GlotLID: "
                              "eng_Latn, ...); rows in others are set aside"),
        P("min_score", "float", min=0.0, max=1.0,
          doc="set aside rows whose language the model gives with a lower probability"),
        P("column", "str", default="language", doc="the new column; the probability goes in `<column>_score`"),
    )

    def reads(self, args):
        on = args.get("on", "conversation")
        return [] if on == "conversation" else [on]

    def adds(self, args):
        col = args.get("column", "language")
        return [col, f"{col}_score"]

    def types(self, args):
        col = args.get("column", "language")
        return {col: "str", f"{col}_score": "float"}

    def model_kinds(self, args):
        return {"model": ("language_id",)}

    def model_calls(self, args):
        return {"model": ("identify",)}

    def check(self, args):
        if args.get("keep") is not None and not args["keep"]:
            return [("keep", "`keep` names no language: every row would be set aside (leave it out to keep all)")]
        return []

    def check_model(self, args, pname, source):
        from ..model_files import LID176_LABELS
        if source != "builtin:lid176":
            return []  # another file's languages are known once it loads (`run` checks them first)
        return [("keep", f"`{lang}` is not a language builtin:lid176 gives",
                 did_you_mean(lang, sorted(LID176_LABELS)) or ("its languages are ISO 639 codes such as en, fr, "
                                                              "de, zh, ja",))
                for lang in args.get("keep") or () if lang not in LID176_LABELS][:1]

    def run(self, ctx, args, inputs):
        src = inputs[0]
        rt, model = ctx.runtime, ctx.models[args["model"]]
        keep, floor = args.get("keep"), args.get("min_score")
        if keep:
            known = set(rt.labels(model))
            unknown = [x for x in keep if x not in known]
            if unknown:  # before any text is identified: a misspelt language would set aside every row
                raise UserError(f"`keep` names {', '.join(map(repr, unknown))}, which model `{args['model']}` never "
                                f"gives; its languages include {', '.join(sorted(known)[:12])}, ...")
        on = args.get("on", "conversation")
        texts = _texts(src, on)
        found = rt.identify(model, texts, progress=ctx.progress)
        col = args.get("column", "language")
        langs = [f[0] if f else None for f in found]
        scores = [f[1] if f else None for f in found]
        drop = {}
        for i, f in enumerate(found):
            if not (keep or floor is not None):
                break
            if f is None:
                drop[i] = f"language: no text in `{on}` to identify a language in"
            elif keep and f[0] not in keep:
                drop[i] = f"language: {f[0]} ({f[1]:.2f}), not {' or '.join(keep)}"
            elif floor is not None and f[1] < floor:
                drop[i] = f"language: {f[0]} at {f[1]:.2f}, below min_score {floor:g}"
        if any(langs):
            ctx.info["languages"] = _counts(langs)
        if sum(f is None for f in found) and not drop:
            ctx.warn(f"{sum(f is None for f in found)} rows have no text in `{on}`: their language is null")
        ctx.out.add_columns(src, pa.table({col: pa.array(langs, pa.string()),
                                           f"{col}_score": pa.array(scores, pa.float64())}), drop=drop or None)


def _texts(src, on: str) -> list[str]:
    if on != "conversation":
        return src.texts(on)
    return [" ".join(str(m.get("content") or "") for m in (ms or [])) for ms in src.column("messages")]


def _counts(langs: list) -> dict:
    """The most common languages found (ten at most), for the run summary and the manifest."""
    from collections import Counter
    return dict(Counter(x for x in langs if x is not None).most_common(10))


OP = Language()
