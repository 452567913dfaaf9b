"""Every bin edge of the label mappings and the answer parser."""

import math

import numpy as np
import pytest

from omni_mer.core.answer import format_answer, parse_answer
from omni_mer.core.labels import LABELS, from_mosei, from_sims


@pytest.mark.parametrize(
    "score, label",
    [
        (-3.0, "SNEG"), (-2.5, "SNEG"), (-2.0, "SNEG"), (-2.0 + 1e-9, "WNEG"), (-1.999, "WNEG"), (-1.0, "WNEG"),
        (-0.5, "WNEG"), (-0.5 + 1e-9, "NEUT"), (-0.499, "NEUT"), (0.0, "NEUT"), (0.499, "NEUT"),
        (0.5 - 1e-9, "NEUT"), (0.5, "WPOS"), (1.0, "WPOS"), (1.999, "WPOS"), (2.0 - 1e-9, "WPOS"), (2.0, "SPOS"),
        (2.5, "SPOS"), (3.0, "SPOS"), (-3, "SNEG"), (2, "SPOS"), (np.float32(0.5), "WPOS"), ("-0.5", "WNEG"),
    ],
)
def test_from_mosei_edges(score, label):
    assert from_mosei(score) == label


@pytest.mark.parametrize(
    "score, label",
    [
        (-1.0, "SNEG"), (-0.8, "SNEG"), (-0.6, "WNEG"), (-0.4, "WNEG"), (-0.2, "WNEG"), (0.0, "NEUT"),
        (0.2, "WPOS"), (0.4, "WPOS"), (0.6, "WPOS"), (0.8, "SPOS"), (1.0, "SPOS"),
        # float noise maps like its grid value
        (-0.6000001, "WNEG"), (-0.7999999, "SNEG"), (-0.19999999, "WNEG"), (0.2000001, "WPOS"),
        (0.19999999, "WPOS"), (0.6000001, "WPOS"), (0.7999999, "SPOS"), (-1e-9, "NEUT"), (1e-9, "NEUT"),
        (-0.2 * 3, "WNEG"), (0.1 + 0.2 + 0.3 + 0.2, "SPOS"),
        # between grid points: binned by the midpoints
        (-0.7, "SNEG"), (-0.69, "WNEG"), (-0.75, "SNEG"), (-0.1, "WNEG"), (-0.09, "NEUT"), (0.09, "NEUT"),
        (0.1, "WPOS"), (0.5, "WPOS"), (0.69, "WPOS"), (0.7, "SPOS"), (0.9, "SPOS"), (-0.3, "WNEG"), (0.3, "WPOS"),
        (np.float64(-0.4), "WNEG"), ("0.6", "WPOS"),
    ],
)
def test_from_sims_edges(score, label):
    assert from_sims(score) == label


@pytest.mark.parametrize("fn, bad, valid", [
    (from_mosei, 3.0001, "[-3.0, 3.0]"), (from_mosei, -3.5, "[-3.0, 3.0]"), (from_mosei, 100, "[-3.0, 3.0]"),
    (from_sims, 1.01, "[-1.0, 1.0]"), (from_sims, -1.2, "[-1.0, 1.0]"), (from_sims, 3.0, "[-1.0, 1.0]"),
    (from_mosei, math.inf, "[-3.0, 3.0]"), (from_sims, -math.inf, "[-1.0, 1.0]"),
])
def test_out_of_range_names_value_and_range(fn, bad, valid):
    with pytest.raises(ValueError) as err:
        fn(bad)
    assert repr(bad) in str(err.value) and valid in str(err.value)


@pytest.mark.parametrize("fn", [from_mosei, from_sims])
@pytest.mark.parametrize("bad", [float("nan"), np.nan, "abc", "", None, [0.1], {"a": 1}])
def test_nan_and_non_numbers_raise(fn, bad):
    with pytest.raises(ValueError) as err:
        fn(bad)
    assert repr(bad) in str(err.value) and "range" in str(err.value)


def test_every_label_reachable():
    assert {from_mosei(s) for s in np.linspace(-3, 3, 61)} == set(LABELS)
    assert {from_sims(s) for s in np.linspace(-1, 1, 11)} == set(LABELS)


@pytest.mark.parametrize(
    "text, label",
    [
        ("<answer>WPOS</answer>", "WPOS"),
        ("<think>happy</think><answer>SPOS</answer>", "SPOS"),
        ("<answer> sneg </answer>", "SNEG"),
        ("<ANSWER>\n  Neut\n</ANSWER>", "NEUT"),
        ("<answer>weakly positive</answer>", "WPOS"),
        ("<answer>Strongly   Negative</answer>", "SNEG"),
        ("<answer>weakly_negative</answer>", "WNEG"),
        ("<answer>strongly-positive.</answer>", "SPOS"),
        ("<answer>neutral</answer>", "NEUT"),
        ("<answer>强烈消极</answer>", "SNEG"),
        ("<answer>轻微积极</answer>", "WPOS"),
        ("<answer> 中性 </answer>", "NEUT"),
        ("<answer>SNEG</answer> then <answer>WPOS</answer>", "WPOS"),  # last wins
        ("<answer>WPOS</answer><answer>garbage</answer>", None),  # last is invalid -> None
        ("<think>x</think><answer>SPOS</answer>\n<answer>WNEG</answer>", "WNEG"),
    ],
)
def test_parse_answer(text, label):
    assert parse_answer(text) == label


@pytest.mark.parametrize(
    "text",
    [None, "", "WPOS", "<answer></answer>", "<answer>happy</answer>", "<answer>WPOS", "WPOS</answer>",
     "<answer>WPOS SPOS</answer>", "<answer>positive</answer>", "<think>SPOS</think>", "<answer>POS</answer>"],
)
def test_parse_answer_malformed(text):
    assert parse_answer(text) is None


def test_format_round_trip():
    for lab in LABELS:
        assert parse_answer(format_answer(" because ", lab)) == lab
    with pytest.raises(ValueError):
        format_answer("x", "HAPPY")
