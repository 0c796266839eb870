"""Committee disagreement measures: hand-computed values, edge cases, alignment and validation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from al_ray.errors import StrategyError
from al_ray.strategies.committee_measures import (
    align_member_probabilities,
    as_committee_probabilities,
    bald,
    consensus_entropy,
    max_disagreement,
    variation_ratios,
    vote_entropy,
)

MEASURES = [vote_entropy, consensus_entropy, max_disagreement, bald, variation_ratios]

LN2 = math.log(2)
LN3 = math.log(3)


def entropy_of(*probabilities: float) -> float:
    """Return -sum p ln p over the nonzero terms, in nats."""
    return -sum(p * math.log(p) for p in probabilities if p > 0)


def kl_of(member: tuple[float, ...], consensus: tuple[float, ...]) -> float:
    """Return KL(member || consensus) over the member's nonzero terms, in nats."""
    return sum(p * math.log(p / q) for p, q in zip(member, consensus) if p > 0)


# 3 members, 2 rows, 3 classes: the member count differs from the row count, so a
# normalisation by the wrong axis shows up in every value.
MEMBER_A = ((0.6, 0.3, 0.1), (0.2, 0.5, 0.3))
MEMBER_B = ((0.5, 0.4, 0.1), (0.1, 0.2, 0.7))
MEMBER_C = ((0.2, 0.7, 0.1), (0.5, 0.2, 0.3))
COMMITTEE = np.array([MEMBER_A, MEMBER_B, MEMBER_C])
# Consensus = mean over the 3 members, per class.
CONSENSUS_ROW_0 = ((0.6 + 0.5 + 0.2) / 3, (0.3 + 0.4 + 0.7) / 3, (0.1 + 0.1 + 0.1) / 3)
CONSENSUS_ROW_1 = ((0.2 + 0.1 + 0.5) / 3, (0.5 + 0.2 + 0.2) / 3, (0.3 + 0.7 + 0.3) / 3)

# The same shape with probabilities of exactly 0 and 1.
ONE_HOT_COMMITTEE = np.array(
    [
        [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]],
        [[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]],
        [[0.0, 1.0, 0.0], [0.0, 0.5, 0.5]],
    ]
)


def test_vote_entropy_table() -> None:
    expected = [
        # Row 0 votes: A -> 0, B -> 0, C -> 1, so V = (2, 1, 0) / 3 members.
        # -(2/3 ln 2/3 + 1/3 ln 1/3) = ln 3 - (2/3) ln 2 = 0.63651...
        LN3 - 2 / 3 * LN2,
        # Row 1 votes: A -> 1, B -> 2, C -> 0, so V = (1, 1, 1) / 3 and the entropy is ln 3.
        LN3,
    ]
    np.testing.assert_allclose(vote_entropy(COMMITTEE), expected, rtol=1e-12)


def test_vote_entropy_ties_lowest_class() -> None:
    # Row 1 of ONE_HOT_COMMITTEE: A = [.5, .5, 0] -> 0, B = [.5, 0, .5] -> 0,
    # C = [0, .5, .5] -> 1, so V = (2, 1, 0) / 3, not the (1, 1, 1) / 3 that
    # breaking ties towards the highest class would give.
    assert vote_entropy(ONE_HOT_COMMITTEE)[1] == pytest.approx(LN3 - 2 / 3 * LN2, rel=1e-12)


def test_vote_entropy_tie_before_renormalising() -> None:
    # Dividing this row by its sum rounds columns 0 and 1 to the same float64,
    # but column 1 is larger in the input, so the member votes for class 1.
    first = 0.421327155153436
    second = np.nextafter(first, 1.0)
    row = np.array([first, second, 0.3647482804919992])
    normalised = row / row.sum()
    assert normalised[0] == normalised[1]
    committee = np.array([[row], [[0.0, 1.0, 0.0]]])
    # Both members vote for class 1: no disagreement.
    np.testing.assert_array_equal(vote_entropy(committee), [0.0])


def test_consensus_entropy_table() -> None:
    expected = [
        # H(1.3/3, 1.4/3, 0.3/3) = 0.94829...
        entropy_of(*CONSENSUS_ROW_0),
        # H(0.8/3, 0.9/3, 1.3/3) = 1.07603...
        entropy_of(*CONSENSUS_ROW_1),
    ]
    np.testing.assert_allclose(consensus_entropy(COMMITTEE), expected, rtol=1e-12)


def test_bald_table() -> None:
    expected = [
        # H(consensus) - (H(A) + H(B) + H(C)) / 3
        # = 0.94830 - (0.89795 + 0.94335 + 0.80182) / 3 = 0.06726...
        entropy_of(*CONSENSUS_ROW_0)
        - (entropy_of(*MEMBER_A[0]) + entropy_of(*MEMBER_B[0]) + entropy_of(*MEMBER_C[0])) / 3,
        # = 1.07603 - (1.02965 + 0.80182 + 1.02965) / 3 = 0.12233...
        entropy_of(*CONSENSUS_ROW_1)
        - (entropy_of(*MEMBER_A[1]) + entropy_of(*MEMBER_B[1]) + entropy_of(*MEMBER_C[1])) / 3,
    ]
    np.testing.assert_allclose(bald(COMMITTEE), expected, rtol=1e-12)


def test_max_disagreement_mean_table() -> None:
    expected = [
        # (KL(A || c) + KL(B || c) + KL(C || c)) / 3 = (0.06270 + 0.00989 + 0.12919) / 3 = 0.06726...
        (
            kl_of(MEMBER_A[0], CONSENSUS_ROW_0)
            + kl_of(MEMBER_B[0], CONSENSUS_ROW_0)
            + kl_of(MEMBER_C[0], CONSENSUS_ROW_0)
        )
        / 3,
        # (0.08756 + 0.15653 + 0.12289) / 3 = 0.12233...
        (
            kl_of(MEMBER_A[1], CONSENSUS_ROW_1)
            + kl_of(MEMBER_B[1], CONSENSUS_ROW_1)
            + kl_of(MEMBER_C[1], CONSENSUS_ROW_1)
        )
        / 3,
    ]
    np.testing.assert_allclose(max_disagreement(COMMITTEE), expected, rtol=1e-12)


def test_max_disagreement_max_table() -> None:
    expected = [
        kl_of(MEMBER_C[0], CONSENSUS_ROW_0),  # 0.12919, member C is the farthest
        kl_of(MEMBER_B[1], CONSENSUS_ROW_1),  # 0.15653, member B is the farthest
    ]
    np.testing.assert_allclose(max_disagreement(COMMITTEE, reduction="max"), expected, rtol=1e-12)


def test_one_hot_committee_table() -> None:
    # Row 0: consensus (2/3, 1/3, 0). Members are certain, so every member entropy is 0.
    # Row 1: consensus (1/3, 1/3, 1/3). Every member entropy is ln 2.
    with np.errstate(all="raise"):
        np.testing.assert_allclose(
            consensus_entropy(ONE_HOT_COMMITTEE), [LN3 - 2 / 3 * LN2, LN3], rtol=1e-12
        )
        # Row 0: H(consensus) - 0. Row 1: ln 3 - ln 2 = ln 1.5.
        np.testing.assert_allclose(
            bald(ONE_HOT_COMMITTEE), [LN3 - 2 / 3 * LN2, math.log(1.5)], rtol=1e-12
        )
        # Row 0: KL(A) = KL(B) = 1 ln(1 / (2/3)) = ln 1.5 and KL(C) = 1 ln(1 / (1/3)) = ln 3,
        # so the mean is (2 ln 1.5 + ln 3) / 3 = ln 3 - (2/3) ln 2.
        # Row 1: each member has KL = 2 * 0.5 ln(0.5 / (1/3)) = ln 1.5.
        np.testing.assert_allclose(
            max_disagreement(ONE_HOT_COMMITTEE), [LN3 - 2 / 3 * LN2, math.log(1.5)], rtol=1e-12
        )
        np.testing.assert_allclose(
            max_disagreement(ONE_HOT_COMMITTEE, reduction="max"),
            [LN3, math.log(1.5)],
            rtol=1e-12,
        )


@pytest.mark.parametrize("measure", MEASURES)
def test_measure_zero_one_probabilities_finite(measure) -> None:
    # Members that are certain of different classes, and a column no member uses.
    committee = np.array(
        [
            [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
            [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
        ]
    )
    with np.errstate(all="raise"):
        utilities = measure(committee)
    assert utilities.shape == (3,)
    assert utilities.dtype == np.float64
    assert np.all(np.isfinite(utilities))
    assert utilities[1] == 0.0  # both members certain of class 2: no disagreement


def test_max_disagreement_subnormal_finite() -> None:
    # 5e-324 / 3 rounds to 0 in float64, so a consensus formed as a mean would
    # be 0 where member 0 is not, and the divergence would be inf.
    committee = np.array([[[5e-324, 1.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
    for reduction in ("mean", "max"):
        utilities = max_disagreement(committee, reduction=reduction)
        assert np.all(np.isfinite(utilities))
        assert utilities[0] == pytest.approx(0.0, abs=1e-300)


def test_identical_members_no_disagreement() -> None:
    member = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]])
    committee = np.stack([member, member, member, member])
    member_entropy = [
        entropy_of(0.7, 0.2, 0.1),
        LN2,
        0.0,
        LN3,
    ]
    np.testing.assert_allclose(consensus_entropy(committee), member_entropy, rtol=1e-12)
    np.testing.assert_allclose(max_disagreement(committee), np.zeros(4), atol=1e-15)
    np.testing.assert_allclose(max_disagreement(committee, reduction="max"), np.zeros(4), atol=1e-15)
    np.testing.assert_allclose(bald(committee), np.zeros(4), atol=1e-15)
    np.testing.assert_array_equal(vote_entropy(committee), np.zeros(4))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_measures_low_precision_exact(dtype) -> None:
    # Every value of ONE_HOT_COMMITTEE is exact in float16, so results match float64.
    committee = ONE_HOT_COMMITTEE.astype(dtype)
    for measure in MEASURES:
        utilities = measure(committee)
        assert utilities.dtype == np.float64
        np.testing.assert_allclose(utilities, measure(ONE_HOT_COMMITTEE), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_measures_low_precision_close(dtype) -> None:
    # 0.7, 0.3 and 0.1 are not exact in float16, so rows are renormalised and the
    # result stays within float16 precision of the float64 value.
    committee = COMMITTEE.astype(dtype)
    for measure in MEASURES:
        np.testing.assert_allclose(measure(committee), measure(COMMITTEE), atol=2e-3)


def test_measures_unnormalised_members() -> None:
    # Scaling each member's rows by a positive factor changes nothing.
    scaled = COMMITTEE * np.array([2.0, 0.5, 10.0])[:, None, None]
    for measure in MEASURES:
        np.testing.assert_allclose(measure(scaled), measure(COMMITTEE), rtol=1e-12)


def test_measures_input_not_mutated() -> None:
    committee = (COMMITTEE * 3.0).astype(np.float32)
    before = committee.copy()
    for measure in MEASURES:
        measure(committee)
    np.testing.assert_array_equal(committee, before)


def test_as_committee_probabilities_returns_copy() -> None:
    committee = ONE_HOT_COMMITTEE.copy()
    normalised = as_committee_probabilities(committee)
    normalised[0, 0, 0] = 9.0
    assert committee[0, 0, 0] == 1.0


def test_measures_empty_rows() -> None:
    for measure in MEASURES:
        utilities = measure(np.empty((3, 0, 4), dtype=np.float32))
        assert utilities.shape == (0,)
        assert utilities.dtype == np.float64


def test_measures_single_class() -> None:
    # With one class every member is certain of it.
    committee = np.array([[[1.0], [0.2]], [[0.5], [1.0]]])
    for measure in MEASURES:
        np.testing.assert_array_equal(measure(committee), np.zeros(2))


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize(
    ("committee", "message"),
    [
        (
            np.full((2, 3), 0.5),
            r"committee_probabilities must have shape \(n_members, n_rows, n_classes\), "
            r"got \(2, 3\); stack each member's predict_proba output",
        ),
        (
            np.full((1, 2, 3), 1 / 3),
            r"a committee needs at least 2 members, got 1; train more members",
        ),
        (np.empty((0, 2, 3)), r"a committee needs at least 2 members, got 0"),
        (
            np.empty((3, 2, 0)),
            r"committee_probabilities have no class columns, got shape \(3, 2, 0\)",
        ),
        (
            np.array([[[0.5, 0.5]], [[np.nan, 0.5]]]),
            r"committee_probabilities contain NaN or inf \(member 1, row 0\)",
        ),
        (
            np.array([[[0.5, 0.5], [0.5, np.inf]], [[0.5, 0.5], [0.5, 0.5]]]),
            r"committee_probabilities contain NaN or inf \(member 0, row 1\)",
        ),
        (
            np.array([[[0.5, 0.5]], [[1.2, -0.2]]]),
            r"committee_probabilities must be >= 0, got a minimum of -0\.2 "
            r"\(member 1, row 0\); pass probabilities, not logits",
        ),
        (
            np.array([[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [0.0, 0.0]]]),
            r"a row of committee_probabilities sums to 0 \(member 1, row 1\); "
            r"every member's row needs some mass",
        ),
        (
            np.array([[[1e308, 1e308]], [[0.5, 0.5]]]),
            r"a row of committee_probabilities sums to more than the float64 maximum "
            r"\(member 0, row 0\)",
        ),
    ],
    ids=[
        "2d",
        "one_member",
        "no_members",
        "no_classes",
        "nan",
        "inf",
        "negative",
        "zero_sum",
        "sum_overflow",
    ],
)
def test_measure_rejects(measure, committee, message) -> None:
    with pytest.raises(StrategyError, match=message):
        measure(committee)


def test_max_disagreement_rejects_reduction() -> None:
    with pytest.raises(StrategyError, match=r"reduction must be 'mean' or 'max', got 'sum'"):
        max_disagreement(COMMITTEE, reduction="sum")


@st.composite
def committees(draw: st.DrawFn) -> np.ndarray:
    """Draw a valid committee in float16/32/64, rows not always normalised."""
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    n_members = draw(st.integers(2, 5))
    n_rows = draw(st.integers(1, 8))
    n_classes = draw(st.integers(1, 5))
    width = np.dtype(dtype).itemsize * 8
    elements = st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0, width=width))
    committee = draw(hnp.arrays(dtype, (n_members, n_rows, n_classes), elements=elements))
    # A row of zeros is invalid input, so give such rows their mass in one column.
    zero_rows = committee.astype(np.float64).sum(axis=2) == 0
    committee[zero_rows, draw(st.integers(0, n_classes - 1))] = 1
    return committee


@settings(deadline=None, max_examples=150)
@given(committee=committees(), data=st.data())
def test_measures_bounds_and_symmetry(committee: np.ndarray, data: st.DataObject) -> None:
    n_members, n_rows, n_classes = committee.shape
    # Vote entropy and BALD are at most ln of the smaller of the member and class
    # counts, and the consensus entropy at most ln n_classes. The mean divergence
    # equals BALD, so it shares that bound.
    upper = {
        vote_entropy: math.log(min(n_members, n_classes)),
        consensus_entropy: math.log(n_classes),
        max_disagreement: math.log(min(n_members, n_classes)),
        bald: math.log(min(n_members, n_classes)),
    }
    member_order = data.draw(st.permutations(range(n_members)))
    class_order = data.draw(st.permutations(range(n_classes)))
    for measure, bound in upper.items():
        utilities = measure(committee)
        assert utilities.shape == (n_rows,)
        assert utilities.dtype == np.float64
        assert np.all(np.isfinite(utilities))
        assert np.all(utilities >= 0.0)
        assert np.all(utilities <= bound + 1e-12)
        # Members are unordered, so permuting them changes nothing.
        np.testing.assert_allclose(
            measure(committee[member_order]), utilities, rtol=1e-12, atol=1e-12
        )
        # Classes are unordered too, except for vote entropy, whose argmax ties
        # go to the lowest index and so depend on the column order.
        if measure is not vote_entropy:
            np.testing.assert_allclose(
                measure(committee[:, :, class_order]), utilities, rtol=1e-12, atol=1e-12
            )


@settings(deadline=None, max_examples=150)
@given(committee=committees())
def test_max_disagreement_mean_equals_bald(committee: np.ndarray) -> None:
    # mean_m KL(p_m || c) = sum_m sum_y p_m log p_m / M - sum_y c log c = H(c) - mean_m H(p_m).
    mean_divergence = max_disagreement(committee)
    np.testing.assert_allclose(mean_divergence, bald(committee), rtol=1e-9, atol=1e-12)
    # Each member's divergence is at most ln n_members, because the consensus is >= p_m / n_members.
    largest_divergence = max_disagreement(committee, reduction="max")
    assert np.all(largest_divergence >= mean_divergence - 1e-12)
    assert np.all(largest_divergence <= math.log(committee.shape[0]) + 1e-12)


def test_align_member_probabilities_subsets() -> None:
    # Member 0 saw classes 0 and 2, member 1 saw 1, 2 and 3, member 2 saw only class 3.
    member_0 = align_member_probabilities(np.array([[0.25, 0.75], [1.0, 0.0]]), np.array([0, 2]), 4)
    member_1 = align_member_probabilities(
        np.array([[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]], dtype=np.float32), np.array([1, 2, 3]), 4
    )
    member_2 = align_member_probabilities(np.array([[1.0], [1.0]]), np.array([3]), 4)
    np.testing.assert_array_equal(member_0, [[0.25, 0.0, 0.75, 0.0], [1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(member_1, [[0.0, 0.5, 0.25, 0.25], [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(member_2, [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    assert member_1.dtype == np.float64

    committee = np.stack([member_0, member_1, member_2])
    # Row 1 votes: class 0, class 3, class 3 -> V = (1, 0, 0, 2) / 3.
    assert vote_entropy(committee)[1] == pytest.approx(LN3 - 2 / 3 * LN2, rel=1e-12)
    # Row 0 consensus: (0.25, 0.5, 0.75 + 0.25, 0.25 + 1) / 3 = (1/12, 1/6, 1/3, 5/12).
    assert consensus_entropy(committee)[0] == pytest.approx(
        entropy_of(1 / 12, 1 / 6, 1 / 3, 5 / 12), rel=1e-12
    )


def test_align_member_probabilities_column_order() -> None:
    # Column j belongs to member_classes[j], whatever the order.
    aligned = align_member_probabilities(np.array([[0.1, 0.9]]), [2, 0], 3)
    np.testing.assert_array_equal(aligned, [[0.9, 0.0, 0.1]])


def test_align_member_probabilities_input_not_mutated() -> None:
    probabilities = np.array([[0.25, 0.75]])
    aligned = align_member_probabilities(probabilities, np.array([0, 1]), 2)
    aligned[0, 0] = 9.0
    assert probabilities[0, 0] == 0.25


@pytest.mark.parametrize(
    ("probabilities", "member_classes", "n_classes", "message"),
    [
        (
            np.array([[0.5, 0.5]]),
            np.array([0, 3]),
            3,
            r"member_classes must lie in \[0, 3\), got values from 0 to 3; "
            r"pass indices into the committee's classes",
        ),
        (np.array([[0.5, 0.5]]), np.array([-1, 0]), 3, r"member_classes must lie in \[0, 3\)"),
        (
            np.array([[0.5, 0.5]]),
            np.array([0, 1, 2]),
            3,
            r"probabilities have 2 columns but member_classes names 3 classes",
        ),
        (
            np.array([[0.5, 0.5]]),
            np.array([1, 1]),
            3,
            r"member_classes must be distinct, got \[1, 1\]",
        ),
        (
            np.array([[0.5, 0.5]]),
            np.array([0.0, 1.0]),
            3,
            r"member_classes must hold integer class indices, got dtype float64; "
            r"map the member's classes_ labels",
        ),
        (
            np.empty((1, 0)),
            np.array([], dtype=np.int64),
            3,
            r"member_classes must be a non-empty 1-D array of class indices, got shape \(0,\)",
        ),
        (
            np.array([[0.5, 0.5]]),
            np.array([[0, 1]]),
            3,
            r"member_classes must be a non-empty 1-D array of class indices, got shape \(1, 2\)",
        ),
        (
            np.array([0.5, 0.5]),
            np.array([0, 1]),
            3,
            r"probabilities must have shape \(n_rows, n_member_classes\), got \(2,\)",
        ),
        (np.array([[1.0]]), np.array([0]), 0, r"n_classes must be >= 1, got 0"),
        (np.array([[1.0]]), np.array([0]), 2.0, r"n_classes must be an integer, got 2\.0"),
        (np.array([[1.0]]), np.array([0]), True, r"n_classes must be an integer, got True"),
    ],
    ids=[
        "index_too_high",
        "index_negative",
        "width_mismatch",
        "duplicate",
        "float_classes",
        "empty_classes",
        "2d_classes",
        "1d_probabilities",
        "zero_classes",
        "float_n_classes",
        "bool_n_classes",
    ],
)
def test_align_member_probabilities_rejects(
    probabilities, member_classes, n_classes, message
) -> None:
    with pytest.raises(StrategyError, match=message):
        align_member_probabilities(probabilities, member_classes, n_classes)


def test_variation_ratios_table() -> None:
    expected = [
        # Row 0 votes: A -> 0, B -> 0, C -> 1. The modal class has 2 of 3 votes: 1 - 2/3.
        1 / 3,
        # Row 1 votes: A -> 1, B -> 2, C -> 0. Every class has 1 of 3 votes: 1 - 1/3.
        2 / 3,
    ]
    np.testing.assert_allclose(variation_ratios(COMMITTEE), expected, rtol=1e-15)


def test_variation_ratios_ties_lowest_class() -> None:
    # Row 1 of ONE_HOT_COMMITTEE: members A and B tie between two classes and vote
    # for class 0, member C votes for class 1, so the modal count is 2 of 3.
    np.testing.assert_allclose(variation_ratios(ONE_HOT_COMMITTEE), [1 / 3, 1 / 3], rtol=1e-15)


def test_variation_ratios_tied_modal_classes() -> None:
    # 5 members vote (2, 2, 1): the two modal classes share the count 2, so 1 - 2/5.
    members = [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]
    committee = np.array(members)[:, None, :]
    assert variation_ratios(committee)[0] == pytest.approx(0.6, rel=1e-15)


def test_variation_ratios_agreement_exact_zero() -> None:
    committee = np.array([[[0.6, 0.4], [0.1, 0.9]], [[0.9, 0.1], [0.4, 0.6]], [[0.51, 0.49], [0.0, 1.0]]])
    np.testing.assert_array_equal(variation_ratios(committee), [0.0, 0.0])


# Three MC-dropout samples of two rows over two classes: the sample count
# differs from the row count, so averaging over the wrong axis shows up.
MC_SAMPLES = np.array(
    [
        [[0.9, 0.1], [0.5, 0.5]],
        [[0.6, 0.4], [0.2, 0.8]],
        [[0.3, 0.7], [0.8, 0.2]],
    ]
)


def test_bald_mc_samples_table() -> None:
    expected = [
        # Mean (0.6, 0.4): H = 0.673012. Sample entropies 0.325083, 0.673012, 0.610864
        # average 0.536320, so BALD = 0.673012 - 0.536320 = 0.136692.
        entropy_of(0.6, 0.4) - (entropy_of(0.9, 0.1) + entropy_of(0.6, 0.4) + entropy_of(0.3, 0.7)) / 3,
        # Mean (0.5, 0.5): H = ln 2 = 0.693147. Sample entropies 0.693147, 0.500402, 0.500402
        # average 0.564650, so BALD = 0.128497.
        LN2 - (LN2 + 2 * entropy_of(0.2, 0.8)) / 3,
    ]
    np.testing.assert_allclose(expected, [0.136692, 0.128497], atol=1e-6)
    np.testing.assert_allclose(bald(MC_SAMPLES), expected, rtol=1e-12)


def test_variation_ratios_mc_samples_table() -> None:
    # Row 0 votes 0, 0, 1. Row 1: sample 0 ties and votes 0, then 1 and 0, so both rows are 1 - 2/3.
    np.testing.assert_allclose(variation_ratios(MC_SAMPLES), [1 / 3, 1 / 3], rtol=1e-15)


@settings(deadline=None, max_examples=150)
@given(committee=committees(), data=st.data())
def test_variation_ratios_bounds(committee: np.ndarray, data: st.DataObject) -> None:
    n_members, n_rows, n_classes = committee.shape
    utilities = variation_ratios(committee)
    assert utilities.shape == (n_rows,)
    assert utilities.dtype == np.float64
    # The modal count is at least ceil(n_members / n_classes).
    assert np.all(utilities >= 0.0)
    assert np.all(utilities <= 1.0 - math.ceil(n_members / n_classes) / n_members + 1e-15)
    # Each value is a whole number of dissenting votes over n_members.
    np.testing.assert_allclose(utilities * n_members, np.round(utilities * n_members), atol=1e-12)
    member_order = data.draw(st.permutations(range(n_members)))
    np.testing.assert_array_equal(variation_ratios(committee[member_order]), utilities)
