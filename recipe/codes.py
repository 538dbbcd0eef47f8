"""Every diagnostic code, declared once: its title and the hint shown when a diagnostic
carries none of its own. A `Diagnostic` with a code missing here is a bug (it raises), and
tests/test_errors.py checks that every code here has a case in tests/errors/."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    title: str
    hint: str = ""


CODES: dict[str, Code] = {
    # 00xx: syntax
    "E0001": Code("syntax error", "check the line against the grammar in grammars/recipe.lark"),
    "E0002": Code("unterminated string", "close the string with `\"` on the same line"),
    # 01xx: structure of the recipe
    "E0102": Code("not a recipe", "`recipe schema` prints the JSON Schema of the YAML form"),
    "E0103": Code("malformed YAML recipe", "`recipe schema` prints the JSON Schema that editors check YAML recipes with"),
    "E0104": Code("a mapping where a value belongs", "write a literal, a list or a name"),
    "E0105": Code("an expression where a value belongs", "only row operators (filter, derive) take expressions"),
    "E0106": Code("positional argument not allowed", "name the argument: `name=value`"),
    "E0107": Code("expression too large", "split it into several `derive` steps"),
    "E0108": Code("recipe file too large", "recipes are programs, not data: read large values from a file"),
    "E0109": Code("model without a location", "e.g. `model lm = causal_lm(\"builtin:smollm2\")`"),
    "E0110": Code("malformed source", "a source is `source NAME = read(\"path\", ...)`"),
    "E0111": Code("pipeline without a start", "start the pipeline from a node, or from `union`/`mix`"),
    "E0112": Code("node without input", "start the pipeline from a source or another node"),
    "E0113": Code("several inputs without a combining operator", "combine inputs with `union(...)` or `mix(...)` first"),
    # 02xx: operators and their arguments
    "E0201": Code("unknown operator", "`recipe ops` lists the operators"),
    "E0202": Code("unknown operator parameter", "`recipe ops` lists each operator's parameters"),
    "E0203": Code("missing required parameter", "`recipe ops` marks the required parameters"),
    "E0204": Code("wrong type of value", "`recipe ops` gives each parameter's type"),
    "E0205": Code("value not among the choices", "`recipe ops` lists the choices"),
    "E0206": Code("value out of range", "`recipe ops` gives each parameter's range"),
    "E0207": Code("invalid operator arguments", "see the operator's documentation in `recipe ops`"),
    "E0208": Code("mutually exclusive parameters", "give one of them"),
    "E0209": Code("wrong kind of model", "declare a model of the kind the operator needs"),
    "E0210": Code("invalid template", "placeholders are `{column}` for columns of the step's input"),
    # 03xx: names
    "E0301": Code("unknown node", "define the node before you use it, or check its spelling"),
    "E0302": Code("unknown model", "declare it: `model NAME = KIND(\"location\")`"),
    "E0303": Code("unknown param", "declare it: `param NAME: TYPE = DEFAULT`"),
    "E0304": Code("name defined twice", "give each source, node, model and param its own name"),
    "E0305": Code("unknown param type", "the README's language section lists the param types"),
    "E0306": Code("unknown model kind", "model kinds: embedding, causal_lm, classifier, reward, language_id, finetune"),
    "E0307": Code("model kind the source cannot serve", "use a local model for this kind"),
    "E0308": Code("finetune without a causal LM to start from", "declare a causal_lm model and name it first"),
    "E0309": Code("finetune without rows to train on", "name a node or source: `on=NODE`"),
    "E0310": Code("invalid model option", "the README's model section lists each source's options"),
    "E0311": Code("model cannot serve what the operator asks of it",
                  "use a local copy of the model, or a server that has the capability"),
    "E0312": Code("model location holds no model", "check the path (relative to the recipe file it is written in)"),
    # 04xx: expressions and columns
    "E0401": Code("unknown column", "`recipe compile --emit plan` shows the columns each step has"),
    "E0402": Code("unknown function", "the language's functions are listed in the README"),
    "E0403": Code("wrong number of arguments", "the language's functions are listed in the README"),
    "E0404": Code("list in a row expression", "compare with each value: `x == 1 or x == 2`"),
    "E0405": Code("wrong type of expression", "the README's language section gives each function's types"),
    "E0406": Code("wrong type of column", "derive a column of the type the operator needs first"),
    "E0407": Code("column cannot be derived", "derive a new column name instead"),
    "E0408": Code("invalid regular expression", "patterns are RE2 syntax: https://github.com/google/re2/wiki/Syntax"),
    "E0409": Code("column on both sides of a join", "rename one side's column with `derive` first"),
    "E0410": Code("invalid replacement text or group", "in regexp_replace's replacement, \\1 to \\9 name the pattern's "
                                                       "groups; regexp_extract's group is 0 (the match) to their count"),
    "E0413": Code("a new column's name differs from a column's only in case",
                  "SQL names ignore case: use the column's own spelling to replace it, or another name"),
    "E0415": Code("a row value outside an aggregate in an expectation",
                  "read the rows through rows(), count(...), share(...), mean(...), min(...), max(...) or sum(...)"),
    "E0416": Code("an expectation that is not a condition", "compare the aggregate: `expect NODE: rows() >= 1000`"),
    # 05xx: the graph
    "E0501": Code("cycle between nodes", "a node cannot read, directly or not, its own output"),
    # 06xx: warnings about the graph
    "W0411": Code("no template can render a row at this point",
                  "a template's fields must be columns of the rows it renders"),
    "W0412": Code("inputs hold a column as different types", "give it one type in each input first"),
    "W0414": Code("a column describes the text before a step changes it",
                  "compute it after that step, where it describes the rows it is written with"),
    "W0601": Code("node reaches no sink", "write it with `write NODE to \"file\"`, or remove it"),
    "W0602": Code("recipe without a sink", "a run writes only what `write` statements name"),
    "W0903": Code("every row check read of a source is set aside", "name the file's format, or check the file"),
    "W0905": Code("a source mixes dataset splits", "read one split's files"),
    "W0906": Code("a CSV/TSV header row looks like a record", "name the fields of a file without a header: `columns=[...]`"),
    # 07xx: params given on the command line or in the API
    "E0701": Code("unknown param given a value", "`--set` names a param the recipe declares"),
    "E0702": Code("param value of the wrong type", "give the value in the param's declared type"),
    "E0703": Code("param without a value", "give it a default, or a value with `--set NAME=VALUE`"),
    # 08xx: `use` of other recipes
    "E0801": Code("circular or too deep `use`", "a used recipe cannot use, directly or not, the recipe using it"),
    "E0802": Code("used recipe not found", "the path is relative to the recipe that uses it; `stdlib:NAME` names a library recipe"),
    "E0803": Code("used recipe has errors", "run `recipe check` on the used recipe"),
    "E0804": Code("override of an unknown name", "an override names a param or a source of the used recipe"),
    # 09xx: sources and sinks
    "E0901": Code("unknown source or sink option", "the README's data-formats section lists the options"),
    "E0902": Code("unknown input format", "the README's data-formats section lists the input formats"),
    "E0903": Code("source cannot be read", "check the path (relative to the recipe file) and the format"),
    "E0904": Code("unknown output format", "the README's data-formats section lists the output formats"),
    "E0905": Code("sink outside the output folder", "write to a relative path; `--out` chooses the folder"),
    "E0906": Code("invalid sink", "see the README's section on what a run writes"),
    "E0907": Code("invalid source option", "the README's data-formats section lists the options"),
    "E0908": Code("sink path taken", "give each sink its own file, not one the run writes itself"),
}


def lookup(code: str) -> Code:
    if code not in CODES:
        raise ValueError(f"diagnostic code {code} is not declared in recipe/codes.py")
    return CODES[code]
