"""The JSON Schema of the YAML form, built from the operator declarations.

`recipe.schema.json` beside this file is the committed copy (editors point at it for
YAML completion); a test keeps it equal to `build_schema()`.
"""
from __future__ import annotations

import json
from pathlib import Path

SCHEMA_FILE = Path(__file__).with_name("recipe.schema.json")
NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"}
SCALAR = {"type": ["string", "number", "boolean", "null"]}
VALUE = {"anyOf": [SCALAR, {"type": "array"}]}


def build_schema(plugins_too: bool = False) -> dict:
    """The schema of the YAML form; of the built-in operators (the committed file), or with
    `plugins_too` of the installed plugins' too (`recipe schema`, for an editor)."""
    from .. import ops
    from ..check_io import SINK_OPTIONS, SOURCE_OPTIONS
    op_items = []
    for name in ops.names(plugins_too):
        spec = ops.get(name)
        body = spec.json_schema()
        alt = [body]
        if spec.positional:
            alt.append({"type": ["string", "number"]})  # `- filter: "expr"` shorthand
        if not spec.params or not any(p.required for p in spec.params):
            alt.append({"type": "null"})
        op_items.append({"type": "object", "properties": {name: {"anyOf": alt}},
                         "required": [name], "additionalProperties": False})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://recipe.dev/schema/recipe.schema.json",
        "title": "recipe (YAML form)",
        "type": "object",
        "required": ["recipe"],
        "additionalProperties": False,
        "properties": {
            "recipe": NAME,
            "uses": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["recipe"], "additionalProperties": False,
                "properties": {"recipe": {"type": "string"},
                               "with": {"type": "object", "additionalProperties": VALUE}}}},
            "params": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["type"], "additionalProperties": False,
                "properties": {"type": {"enum": ["int", "float", "str", "bool"]}, "default": SCALAR}}},
            "models": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["kind", "source"],
                "properties": {"kind": {"enum": ["embedding", "causal_lm", "classifier", "reward", "language_id", "finetune"]},
                               "source": {"type": "string",
                                          "description": "where the model is; for finetune, the causal_lm model it starts from"},
                               "on": {"type": "string", "description": "finetune: the node whose rows it trains on"},
                               **_model_options()},
                "additionalProperties": VALUE}},
            "sources": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["read"],
                "properties": {"read": {"type": "string"}, "format": {"type": "string", "description": SOURCE_OPTIONS["format"]},
                               **{k: {**VALUE, "description": v} for k, v in SOURCE_OPTIONS.items() if k != "format"}},
                "additionalProperties": VALUE}},
            "steps": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": False,
                "properties": {"input": NAME, "inputs": {"type": "array", "items": NAME},
                               "ops": {"type": "array", "items": {"anyOf": op_items}}}}},
            "sinks": {"type": "array", "items": {
                "type": "object", "required": ["input", "write"],
                # the options' descriptions, for editors (a value may be a `${param}`, so no types)
                "properties": {"input": NAME, "write": {"type": "string"},
                               **{k: {**VALUE, "description": v} for k, v in SINK_OPTIONS.items()}},
                "additionalProperties": VALUE}},
            "expect": {"type": "array", "items": {
                "type": "object", "required": ["node", "that"], "additionalProperties": False,
                "properties": {"node": NAME, "by": {"oneOf": [NAME, {"type": "array", "items": NAME, "minItems": 1}],
                                                    "description": "a column, or a list of columns: the condition holds "
                                                                   "for each group of rows with one value of them"}, "that": {
                    "type": "string", "description": "a condition over aggregates of the node's rows: rows(), "
                                                     "count(cond), share(cond), mean(x), min(x), max(x)"}}}},
        },
    }


def _model_options() -> dict:
    """Every model option of a local or endpoint source (recipe/models.py), for editors; the
    checker says which fit which source (E0310)."""
    from ..models import ENDPOINT, LOCAL
    json_type = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}
    out = {}
    for name, o in sorted((LOCAL | ENDPOINT).items()):
        where = "endpoint" if name not in LOCAL else "local" if name not in ENDPOINT else "any"
        out[name] = {"anyOf": [{"type": json_type[o.type], "description": f"{where} models: {o.doc}"},
                               {"type": "string", "pattern": r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"}]}
    return out


def write_schema() -> None:
    SCHEMA_FILE.write_text(json.dumps(build_schema(), indent=2) + "\n", encoding="utf-8")
