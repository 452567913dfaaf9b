"""omni_mer.core.answer: the one home of the <think>/<answer> format."""

import pytest

from omni_mer.core.answer import answer_prefix, format_answer, parse_answer, rationale_text, split_answer, think_text


def test_format_round_trip():
    text = format_answer("  The voice is warm. ", "WPOS")
    assert text == "<think>The voice is warm.</think><answer>WPOS</answer>"
    assert text.startswith(answer_prefix("The voice is warm."))
    assert parse_answer(text) == "WPOS" and split_answer(text) == ("The voice is warm.", "WPOS")
    assert rationale_text(text) == think_text(text) == "The voice is warm."


@pytest.mark.parametrize("text, think, rationale", [
    ("<think>open to the end", "open to the end", "open to the end"),   # unclosed think
    ("no tags at all <answer>SPOS</answer>", "", "no tags at all"),      # no think: the text minus the answer
    ("plain <answer>SPOS", "", "plain"),                                  # unclosed answer is cut too
    ("", "", ""),
])
def test_rationale_and_think_text(text, think, rationale):
    assert think_text(text) == think and rationale_text(text) == rationale


@pytest.mark.parametrize("text", [
    "<answer>SPOS</answer>", "<think>x</think>", "<think>a</think><think>b</think><answer>SPOS</answer>",
    "<think>x</think><answer>SPOS</answer> trailing", "lead <think>x</think><answer>SPOS</answer>", None,
])
def test_split_answer_refuses_anything_but_one_think_then_one_answer(text):
    assert split_answer(text) is None
