"""union: the rows of several nodes, by column name; a repeated `_id` is kept once."""
from __future__ import annotations

from .base import Op


class Union(Op):
    name = "union"
    version = 1
    doc = "Concatenate nodes (columns matched by name, missing ones null); the first row of each `_id` wins."
    multi_input = True

    def run(self, ctx, args, inputs):
        ctx.out.concat(inputs)


OP = Union()
