"""Agreement statistics, checked against arithmetic done by hand (written out in comments)."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rmstudio.core.labeling.agreement import (
    CATEGORIES, cohen_kappa, fleiss_kappa, percent_agreement, project_agreement,
)
from rmstudio.core.labeling.stats import format_stats, project_stats
from builders import add_pairs as add_comparisons


def test_percent_agreement_counts_equal_pairs_and_is_none_without_pairs():
    assert percent_agreement([("a", "a"), ("a", "b"), ("tie", "tie"), ("b", "b")]) == 0.75
    assert percent_agreement([]) is None


def test_cohen_kappa_classic_two_by_two_is_0_4():
    # Wikipedia's example: 50 items, both 'a' 20, first 'a' second 'b' 5, first 'b' second 'a'
    # 10, both 'b' 15.
    # p_o = (20 + 15) / 50 = 0.7
    # first says 'a' 25/50 = 0.5, second says 'a' 30/50 = 0.6
    # p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    first = ["a"] * 20 + ["a"] * 5 + ["b"] * 10 + ["b"] * 15
    second = ["a"] * 20 + ["b"] * 5 + ["a"] * 10 + ["b"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_cohen_kappa_second_two_by_two_example():
    # 100 items: both 'a' 45, a/b 15, b/a 25, both 'b' 15.
    # p_o = 0.60; first 'a' 0.60, second 'a' 0.70
    # p_e = 0.6 * 0.7 + 0.4 * 0.3 = 0.42 + 0.12 = 0.54
    # kappa = (0.60 - 0.54) / 0.46 = 0.1304...
    first = ["a"] * 60 + ["b"] * 40
    second = ["a"] * 45 + ["b"] * 15 + ["a"] * 25 + ["b"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.06 / 0.46)


def test_cohen_kappa_undefined_cases():
    # One shared category: p_o = 1 and p_e = 1, 0/0 -> None (documented in agreement.py).
    assert cohen_kappa(["tie"] * 5, ["tie"] * 5) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="same items"):
        cohen_kappa(["a"], ["a", "b"])
    # Opposite everywhere with two categories: p_o = 0, p_e = 0.5, kappa = -0.5 / 0.5 = -1.
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)


# Wikipedia's worked example of Fleiss' kappa: 10 items, 14 raters each, 5 categories.
FLEISS_WIKIPEDIA = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_wikipedia_example_is_0_210():
    # p_j = column totals / 140 = 20, 28, 39, 21, 32 / 140 = .143 .200 .279 .150 .229
    # P_e = sum p_j^2 = (400 + 784 + 1521 + 441 + 1024) / 19600 = 4170 / 19600 = 0.2128
    # P_i = (sum n_ij^2 - 14) / (14 * 13): 1.000 .253 .308 .440 .330 .462 .242 .176 .286 .286
    # P_bar = 3.780 / 10 = 0.378; kappa = (0.378 - 0.2128) / (1 - 0.2128) = 0.210
    result = fleiss_kappa(FLEISS_WIKIPEDIA)
    assert result.kappa == pytest.approx(0.20993, abs=5e-5)
    assert (result.items, result.raters, result.excluded) == (10, 14, 0)


def test_fleiss_kappa_excludes_items_with_another_number_of_raters():
    table = FLEISS_WIKIPEDIA + [[1, 1, 0, 0, 0], [0, 0, 0, 0, 3]]
    result = fleiss_kappa(table)
    assert result.kappa == pytest.approx(0.20993, abs=5e-5)
    assert (result.items, result.raters, result.excluded) == (10, 14, 2)


def test_fleiss_kappa_undefined_cases():
    assert fleiss_kappa([[3, 0], [3, 0]]).kappa is None  # one category only: P_e = 1
    assert fleiss_kappa([[1, 0], [0, 1]]).kappa is None  # one rater per item
    assert fleiss_kappa([]).kappa is None





@pytest.fixture
def three_annotators(project):
    c1, c2, c3, c4, c5 = add_comparisons(project, 5)
    project.annotator_id("src", kind="source")
    rows = {
        "ann1": {c1: "a", c2: "b", c3: "tie", c4: "a", c5: "a"},
        "ann2": {c1: "a", c2: "a", c3: "tie", c4: "skip", c5: "a"},
        "src": {c1: "a", c2: "b", c3: "both_bad"},
    }
    for name, labels in rows.items():
        for cid, choice in labels.items():
            project.set_label(cid, name, choice)
    return project


def test_project_agreement_by_hand(three_annotators):
    result = project_agreement(three_annotators)
    assert result["categories"] == list(CATEGORIES)
    assert [(a["name"], a["kind"], a["labels"], a["skips"]) for a in result["annotators"]] == [
        ("src", "source", 3, 0), ("ann1", "human", 5, 0), ("ann2", "human", 4, 1)]
    pairs = {(p["annotator_1"], p["annotator_2"]): p for p in result["pairs"]}
    assert len(pairs) == 3
    # ann1/ann2 on c1, c2, c3, c5 (c4 is ann2's skip): [a b tie a] vs [a a tie a]
    # p_o = 3/4; ann1 a2 b1 tie1, ann2 a3 tie1: p_e = (2*3 + 1*1) / 16 = 7/16
    # kappa = (12/16 - 7/16) / (9/16) = 5/9
    p = pairs[("ann1", "ann2")]
    assert p["overlap"] == 4
    assert p["percent_agreement"] == pytest.approx(0.75)
    assert p["cohen_kappa"] == pytest.approx(5 / 9)
    # src/ann1 on c1..c3: [a b both_bad] vs [a b tie]; p_o = 2/3; p_e = (1 + 1) / 9 = 2/9
    # kappa = (6/9 - 2/9) / (7/9) = 4/7
    p = pairs[("src", "ann1")]
    assert (p["overlap"], p["percent_agreement"]) == (3, pytest.approx(2 / 3))
    assert p["cohen_kappa"] == pytest.approx(4 / 7)
    # src/ann2 on c1..c3: [a b both_bad] vs [a a tie]; p_o = 1/3; p_e = (1 * 2) / 9
    # kappa = (3/9 - 2/9) / (7/9) = 1/7
    p = pairs[("src", "ann2")]
    assert p["cohen_kappa"] == pytest.approx(1 / 7)
    # Fleiss over the three items with 3 raters (c5 has 2 and is excluded; c4 has 1 and is
    # no item). Rows (a, b, tie, both_bad): c1 [3 0 0 0], c2 [1 2 0 0], c3 [0 0 2 1]
    # p_j = 4/9 2/9 2/9 1/9 -> P_e = (16 + 4 + 4 + 1) / 81 = 25/81
    # P_i = (9-3)/6 = 1, (1+4-3)/6 = 1/3, (4+1-3)/6 = 1/3 -> P_bar = 5/9 = 45/81
    # kappa = (45 - 25) / (81 - 25) = 20/56 = 5/14
    fleiss = result["fleiss"]
    assert fleiss["kappa"] == pytest.approx(5 / 14)
    assert (fleiss["items"], fleiss["raters"], fleiss["excluded"]) == (3, 3, 1)


def test_project_agreement_without_sources(three_annotators):
    result = project_agreement(three_annotators, include_sources=False)
    assert [a["name"] for a in result["annotators"]] == ["ann1", "ann2"]
    assert len(result["pairs"]) == 1
    # Now c1, c2, c3, c5 have 2 raters each: [2 0 0 0] [1 1 0 0] [0 0 2 0] [2 0 0 0]
    # p_j = 5/8 1/8 2/8 0 -> P_e = (25 + 1 + 4) / 64 = 30/64
    # P_i = 1, 0, 1, 1 -> P_bar = 3/4 = 48/64; kappa = (48 - 30) / (64 - 30) = 18/34 = 9/17
    fleiss = result["fleiss"]
    assert fleiss["kappa"] == pytest.approx(9 / 17)
    assert (fleiss["items"], fleiss["raters"], fleiss["excluded"]) == (4, 2, 0)


def test_project_agreement_of_an_empty_project(project):
    assert project_agreement(project) == {"categories": list(CATEGORIES), "annotators": [],
                                          "pairs": [], "fleiss": None}


def test_stats_show_the_pairwise_table_and_fleiss(three_annotators):
    stats = project_stats(three_annotators)
    assert stats.as_dict()["agreement"]["fleiss"]["items"] == 3
    text = format_stats(stats)
    assert "agreement (skips ignored)" in text
    assert "ann1 / ann2" in text and "75.0%" in text and f"{5 / 9:.3f}" in text
    assert f"Fleiss' kappa {5 / 14:.3f} over 3 comparisons with 3 labels each, 1 excluded" in text


labels = st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=40)


@given(labels)
def test_kappa_of_a_rater_with_itself_is_one(seq):
    kappa = cohen_kappa(seq, seq)
    if len(set(seq)) >= 2:
        assert kappa == pytest.approx(1.0)
    else:
        assert kappa is None


@given(st.lists(st.tuples(st.sampled_from(CATEGORIES), st.sampled_from(CATEGORIES)),
                min_size=1, max_size=40))
def test_kappa_is_symmetric_bounded_and_matches_exact_arithmetic(pairs):
    first, second = [p[0] for p in pairs], [p[1] for p in pairs]
    kappa = cohen_kappa(first, second)
    assert kappa == cohen_kappa(second, first) or kappa == pytest.approx(cohen_kappa(second, first))
    n = len(pairs)
    p_o = Fraction(sum(x == y for x, y in pairs), n)
    p_e = sum(Fraction(first.count(c) * second.count(c), n * n) for c in CATEGORIES)
    if p_e == 1:
        assert kappa is None
    else:
        assert kappa == pytest.approx(float((p_o - p_e) / (1 - p_e)))
        assert -1.0 - 1e-9 <= kappa <= 1.0 + 1e-9
    assert percent_agreement(pairs) == pytest.approx(float(p_o))


@given(st.lists(st.tuples(st.sampled_from(CATEGORIES), st.sampled_from(CATEGORIES)),
                min_size=1, max_size=40))
def test_fleiss_is_defined_like_scotts_pi_for_two_raters(pairs):
    # With two raters per item Fleiss' kappa is Scott's pi: pooled category shares for p_e.
    table = [[(x == c) + (y == c) for c in CATEGORIES] for x, y in pairs]
    result = fleiss_kappa(table)
    n = len(pairs)
    pooled = [Fraction(sum(row[j] for row in table), 2 * n) for j in range(len(CATEGORIES))]
    p_e = sum(p * p for p in pooled)
    p_o = Fraction(sum(x == y for x, y in pairs), n)
    if p_e == 1:
        assert result.kappa is None
    else:
        assert result.kappa == pytest.approx(float((p_o - p_e) / (1 - p_e)))
