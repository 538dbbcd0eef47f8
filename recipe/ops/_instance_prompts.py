"""The prompts and parsing of `instances` (Self-Instruct's `identify_clf_or_not.py`,
`generate_instances.py` and `prepare_for_finetuning.py`). The wording and the examples are this
project's; each prompt is composed as the paper composed its own (the prefix, a space, the task,
a newline), so the paper's templates, saved to files, drop in word for word."""
from __future__ import annotations

import re

CLF_CHECK = """Can each task below be done by picking one of a fixed set of labels? Answer Yes or No.

Task: Decide whether the review below is positive or negative.
Is it classification? Yes

Task: Write a short poem about the sea.
Is it classification? No

Task: Is the following sentence grammatical? Answer yes or no.
Is it classification? Yes

Task: Summarize the paragraph in one sentence.
Is it classification? No

Task: Which language is the text written in: English, French or Spanish?
Is it classification? Yes

Task: Suggest three names for a bakery that sells bread from Vienna.
Is it classification? No

Task: Tell whether the number is prime.
Is it classification? Yes

Task: Explain how a rainbow forms.
Is it classification? No

Task:"""

INPUT_FIRST = """Write examples for each task below: an input and the output it should get, several where the \
task allows. A task that needs no input gets its output alone.

Task: Convert the temperature from Celsius to Fahrenheit.
Example 1
Input: 25 degrees Celsius
Output: 77 degrees Fahrenheit
Example 2
Input: -10 degrees Celsius
Output: 14 degrees Fahrenheit

Task: Give a synonym for the word.
Example 1
Input: happy
Output: glad
Example 2
Input: big
Output: large

Task: Write a haiku about autumn.
Output:
Red leaves drift and fall
the cold wind hums through bare trees
the year breathes slower

Task: Correct the spelling mistakes in the sentence.
Example 1
Input: I recieved the pakage yesterday.
Output: I received the package yesterday.

Task:"""

OUTPUT_FIRST = """Given a classification task and its labels, write an input for each label. A task that needs \
no input gets its label alone.

Task: Decide whether the review is positive or negative.
Class label: Positive
Review: The soup was warm and the staff were kind.
Class label: Negative
Review: We waited an hour and the food was cold.

Task: Is the number even or odd?
Class label: Even
Number: 14
Class label: Odd
Number: 7

Task: Tell whether the sentence is a question.
Class label: Yes
Sentence: Where did you park the car?
Class label: No
Sentence: The car is parked outside.

Task:"""

_EXAMPLE = re.compile(r"Example\s?\d*\.?")
_OUTPUT = re.compile(r"Output\s*\d*\s*:")
_INPUT = re.compile(r"Input\s*\d*\s*:")


def check_prompt(prefix: str, instruction: str) -> str:
    return f"{prefix} {instruction.strip()}\nIs it classification?"


def instance_prompt(prefix: str, instruction: str) -> str:
    return f"{prefix} {instruction.strip()}\n"


def is_yes(answer: str) -> bool:
    """The paper's reading of the check: the answer, stripped, is Yes (any case)."""
    words = answer.strip().split()
    return bool(words) and words[0].strip(".,!:;").lower() == "yes"


def _input_output(text: str) -> tuple[str, str]:
    parts = _OUTPUT.split(text)
    inp, out = (parts[0].strip(), parts[1].strip()) if len(parts) > 1 else ("", text.strip())
    out = _INPUT.split(out)[0].strip()  # a second pair written after the output is not this one's
    return re.sub(r"^Input\s*\d*\s*:", "", inp).strip(), out


def parse_generation(text: str) -> list[tuple[str, str]]:
    """(input, output) pairs of an input-first answer: "Example N" blocks, or one Input/Output
    pair; none when the answer has neither layout."""
    text = text.strip()
    if _EXAMPLE.search(text):
        return [_input_output(t) for t in (x.strip() for x in _EXAMPLE.split(text)) if t]
    if _OUTPUT.search(text):
        return [_input_output(text)]
    return []


def parse_classification(text: str) -> list[tuple[str, str]]:
    """(input, label) pairs of an output-first answer: each "Class label:" line's label, the lines
    after it its input."""
    out = []
    for block in text.split("Class label:")[1:]:
        label, _, rest = block.strip().partition("\n")
        out.append((rest.strip(), label.strip()))
    return out


def invalid(inp: str, out: str) -> str | None:
    """Why the paper drops an instance, or None."""
    if not out:
        return "the output is empty"
    if inp == out:
        return "the input and the output are the same"
    if inp.endswith(":") or out.endswith(":"):
        return "ends with a colon (usually an unfinished generation)"
    return None
