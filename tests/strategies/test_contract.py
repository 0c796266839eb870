"""The contract every query strategy in STRATEGIES must keep.

Each test runs once per registered strategy, so a new strategy joins the suite
by being registered. Batches are built from the strategy's ``needs``. A need
that :func:`build_batch` cannot build fails the test, so extend the builder
when you add a :class:`Need`.
"""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from al_ray.errors import StrategyError
from al_ray.strategies import STRATEGIES, Need, QueryStrategy, ScoringBatch, Selection

STRATEGY_CLASSES = [STRATEGIES[name] for name in sorted(STRATEGIES)]

N_CLASSES = 3
N_FEATURES = 4
N_MEMBERS = 3


@pytest.fixture(params=STRATEGY_CLASSES, ids=lambda cls: cls.name)
def strategy(request: pytest.FixtureRequest) -> QueryStrategy:
    return request.param()


def random_probabilities(
    rng: np.random.Generator, n_rows: int, dtype: type = np.float64
) -> np.ndarray:
    """Return Dirichlet rows with some entries set to exact zeros."""
    probabilities = rng.dirichlet(np.ones(N_CLASSES), size=n_rows)
    probabilities[rng.random((n_rows, N_CLASSES)) < 0.2] = 0.0
    zero_rows = probabilities.sum(axis=1) == 0
    probabilities[zero_rows, 0] = 1.0
    return probabilities.astype(dtype)


def build_batch(
    needs: frozenset[Need],
    row_ids: np.ndarray,
    rng: np.random.Generator,
    probabilities: np.ndarray | None = None,
) -> ScoringBatch:
    """Build a batch containing every input in ``needs`` for the given rows.

    ``probabilities``, when given, is used instead of drawing new ones.
    Calls ``pytest.fail`` for a need it does not know how to build.
    """
    n_rows = len(row_ids)
    fields: dict[str, np.ndarray] = {}
    for need in needs:
        if need is Need.PROBABILITIES:
            if probabilities is None:
                probabilities = random_probabilities(rng, n_rows)
            fields["probabilities"] = probabilities
        elif need is Need.FEATURES:
            fields["features"] = rng.normal(size=(n_rows, N_FEATURES))
        elif need is Need.EMBEDDINGS:
            fields["embeddings"] = rng.normal(size=(n_rows, N_FEATURES))
        elif need is Need.COMMITTEE_PROBABILITIES:
            fields["committee_probabilities"] = np.stack(
                [random_probabilities(rng, n_rows) for _ in range(N_MEMBERS)]
            )
        else:
            pytest.fail(
                f"the contract suite cannot build the input {need!r}; "
                "teach build_batch in tests/strategies/test_contract.py to make it"
            )
    return ScoringBatch(row_ids=np.asarray(row_ids, dtype=np.int64), **fields)


def copy_batch(batch: ScoringBatch) -> ScoringBatch:
    return ScoringBatch(
        row_ids=batch.row_ids.copy(),
        **{
            need.value: None if batch.field(need) is None else batch.field(need).copy()
            for need in Need
        },
    )


def assert_batch_equal(actual: ScoringBatch, expected: ScoringBatch) -> None:
    np.testing.assert_array_equal(actual.row_ids, expected.row_ids)
    for field in [need.value for need in Need]:
        actual_value = getattr(actual, field)
        expected_value = getattr(expected, field)
        if expected_value is None:
            assert actual_value is None
        else:
            assert actual_value.dtype == expected_value.dtype
            np.testing.assert_array_equal(actual_value, expected_value)


def assert_valid_selection(
    selection: Selection, candidates: np.ndarray, excluded: np.ndarray, n: int
) -> None:
    """Check the parts of the contract that hold for any selection."""
    allowed = np.setdiff1d(candidates, excluded)
    assert isinstance(selection, Selection)
    assert selection.row_ids.dtype == np.int64
    assert selection.utilities.dtype == np.float64
    assert selection.row_ids.shape == selection.utilities.shape
    assert len(selection) == min(n, len(allowed))
    assert len(np.unique(selection.row_ids)) == len(selection)
    assert np.all(np.isin(selection.row_ids, allowed))
    assert not np.any(np.isin(selection.row_ids, excluded))
    assert np.all(np.isfinite(selection.utilities))


def test_builder_covers_every_need() -> None:
    rng = np.random.default_rng(0)
    for need in Need:
        batch = build_batch(frozenset({need}), np.arange(3), rng)
        assert getattr(batch, need.value).shape[0] == 3


def test_strategy_declares_itself(strategy: QueryStrategy) -> None:
    assert STRATEGIES[strategy.name] is type(strategy)
    assert isinstance(strategy.needs, frozenset)
    assert all(isinstance(need, Need) for need in strategy.needs)
    assert strategy.description.strip()


def test_strategy_empty_batch(strategy: QueryStrategy) -> None:
    batch = build_batch(strategy.needs | strategy.candidate_needs, np.empty(0, dtype=np.int64), np.random.default_rng(0))
    utilities = strategy.utility(batch, seed=0)
    selection = strategy.query(batch, 5, seed=0)
    assert utilities.shape == (0,)
    assert len(selection) == 0
    assert selection.row_ids.dtype == np.int64


def test_strategy_fewer_rows_than_n(strategy: QueryStrategy) -> None:
    row_ids = np.array([40, 10, 30])
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, np.random.default_rng(1))
    selection = strategy.query(batch, 10, seed=0)
    assert sorted(selection.row_ids.tolist()) == [10, 30, 40]


def test_strategy_all_excluded(strategy: QueryStrategy) -> None:
    row_ids = np.array([40, 10, 30])
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, np.random.default_rng(2))
    selection = strategy.query(batch, 2, seed=0, exclude=np.array([10, 30, 40, 99]))
    assert len(selection) == 0


def test_strategy_exclusion_leaves_fewer_than_n(strategy: QueryStrategy) -> None:
    row_ids = np.arange(10, 20)
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, np.random.default_rng(3))
    exclude = np.arange(10, 17)
    selection = strategy.query(batch, 5, seed=0, exclude=exclude)
    assert sorted(selection.row_ids.tolist()) == [17, 18, 19]


def test_strategy_n_distinct_rows(strategy: QueryStrategy) -> None:
    row_ids = np.arange(50)
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, np.random.default_rng(4))
    selection = strategy.query(batch, 10, seed=0)
    assert_valid_selection(selection, row_ids, np.empty(0, dtype=np.int64), 10)
    assert len(selection) == 10


def test_strategy_never_excluded(strategy: QueryStrategy) -> None:
    row_ids = np.arange(100, 160)
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, np.random.default_rng(5))
    exclude = np.arange(100, 160, 2)
    # An exclusion list may name rows that are not in this batch, and come as a list.
    for excluded in (exclude, [*exclude.tolist(), 5, 10_000]):
        selection = strategy.query(batch, 20, seed=0, exclude=excluded)
        assert_valid_selection(selection, row_ids, np.asarray(excluded), 20)
        assert len(selection) == 20


def test_strategy_utilities_finite(strategy: QueryStrategy) -> None:
    row_ids = np.arange(30)
    rng = np.random.default_rng(6)
    probabilities = random_probabilities(rng, 30)
    probabilities[:5] = [1.0, 0.0, 0.0]
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, rng, probabilities=probabilities)
    utilities = strategy.utility(batch, seed=0)
    assert utilities.shape == (30,)
    assert utilities.dtype == np.float64
    assert np.all(np.isfinite(utilities))


def test_strategy_inputs_not_mutated(strategy: QueryStrategy) -> None:
    row_ids = np.random.default_rng(7).permutation(40) + 1000
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, np.random.default_rng(7))
    exclude = row_ids[:10].copy()
    batch_before = copy_batch(batch)
    exclude_before = exclude.copy()

    strategy.utility(batch, seed=3)
    strategy.query(batch, 5, seed=3, exclude=exclude)

    assert_batch_equal(batch, batch_before)
    np.testing.assert_array_equal(exclude, exclude_before)


def test_strategy_read_only_inputs(strategy: QueryStrategy) -> None:
    batch = build_batch(strategy.needs | strategy.candidate_needs, np.arange(20), np.random.default_rng(8))
    for value in (batch.row_ids, batch.probabilities, batch.features):
        if value is not None:
            value.setflags(write=False)
    selection = strategy.query(batch, 4, seed=0)
    assert len(selection) == 4


def test_strategy_same_seed_same_selection(strategy: QueryStrategy) -> None:
    row_ids = np.arange(200)
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, np.random.default_rng(9))
    first = strategy.query(batch, 15, seed=42)
    second = type(strategy)().query(copy_batch(batch), 15, seed=42)
    np.testing.assert_array_equal(first.row_ids, second.row_ids)
    np.testing.assert_array_equal(first.utilities, second.utilities)


def test_strategy_sparse_shuffled_row_ids(strategy: QueryStrategy) -> None:
    rng = np.random.default_rng(10)
    # Large, non-contiguous and unsorted ids, including 0 and the int64 maximum.
    row_ids = rng.choice(2**62, size=60, replace=False)
    row_ids[:2] = [0, np.iinfo(np.int64).max]
    row_ids = rng.permutation(row_ids)
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, rng)
    exclude = row_ids[::3]

    selection = strategy.query(batch, 12, seed=5, exclude=exclude)

    assert_valid_selection(selection, row_ids, exclude, 12)
    assert len(selection) == 12


def test_strategy_selection_keeps_row_identity(strategy: QueryStrategy) -> None:
    # Shuffling the rows of a batch (every field alike) must not change which
    # row_ids are selected: identity is the row_id, not the position.
    rng = np.random.default_rng(11)
    row_ids = rng.choice(10**12, size=80, replace=False)
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, rng)
    permutation = rng.permutation(80)
    shuffled = batch.subset(permutation)
    straight = strategy.query(batch, 10, seed=1)
    reordered = strategy.query(shuffled, 10, seed=1)
    np.testing.assert_array_equal(straight.row_ids, reordered.row_ids)


@pytest.mark.parametrize(
    "cls", [cls for cls in STRATEGY_CLASSES if cls.needs], ids=lambda cls: cls.name
)
def test_strategy_missing_need(cls: type[QueryStrategy]) -> None:
    strategy = cls()
    every_need = strategy.needs | strategy.candidate_needs
    for need in every_need:
        batch = build_batch(every_need - {need}, np.arange(4), np.random.default_rng(12))
        with pytest.raises(
            StrategyError, match=rf"this strategy needs '{need.value}' but the batch has none"
        ):
            strategy.query(batch, 2, seed=0)


@pytest.mark.parametrize(
    "cls", [cls for cls in STRATEGY_CLASSES if cls.needs], ids=lambda cls: cls.name
)
def test_strategy_misaligned_need(cls: type[QueryStrategy]) -> None:
    strategy = cls()
    full = build_batch(strategy.needs | strategy.candidate_needs, np.arange(5), np.random.default_rng(13))
    for need in strategy.needs:
        value = getattr(full, need.value)
        fields = {n.value: getattr(full, n.value) for n in strategy.needs | strategy.candidate_needs}
        if need is Need.COMMITTEE_PROBABILITIES:
            fields[need.value] = value[:, :4]
            expected = rf"\(n_members, n_rows=5, n_classes\), got \({value.shape[0]}, 4, {value.shape[2]}\)"
        else:
            fields[need.value] = value[:4]
            expected = rf"\(n_rows=5, k\), got \(4, {value.shape[1]}\)"
        batch = ScoringBatch(row_ids=full.row_ids, **fields)
        with pytest.raises(StrategyError, match=rf"{need.value} must have shape {expected}"):
            strategy.query(batch, 2, seed=0)


def test_strategy_two_dimensional_row_ids(strategy: QueryStrategy) -> None:
    batch = build_batch(strategy.needs | strategy.candidate_needs, np.arange(4), np.random.default_rng(14))
    bad = ScoringBatch(
        row_ids=batch.row_ids.reshape(2, 2),
        probabilities=batch.probabilities,
        features=batch.features,
    )
    with pytest.raises(StrategyError, match=r"row_ids must be 1-D, got shape \(2, 2\)"):
        strategy.query(bad, 2, seed=0)


@pytest.mark.parametrize(
    "cls",
    [cls for cls in STRATEGY_CLASSES if cls.choose is QueryStrategy.choose],
    ids=lambda cls: cls.name,
)
def test_top_n_strategy_picks_highest(cls: type[QueryStrategy]) -> None:
    # Strategies that keep the default selector return the n highest utilities,
    # best first, each reported with the utility of its own row.
    strategy = cls()
    rng = np.random.default_rng(15)
    row_ids = rng.choice(10**9, size=50, replace=False)
    batch = build_batch(strategy.needs | strategy.candidate_needs, row_ids, rng)
    utilities = strategy.utility(batch, seed=2)
    utility_by_row = dict(zip(row_ids.tolist(), utilities.tolist()))

    selection = strategy.query(batch, 8, seed=2)

    assert selection.utilities.tolist() == [utility_by_row[r] for r in selection.row_ids.tolist()]
    assert np.all(np.diff(selection.utilities) <= 0)
    assert selection.utilities[-1] >= np.sort(utilities)[-8]


@st.composite
def probability_matrices(draw: st.DrawFn) -> np.ndarray:
    """Draw a valid probability matrix in float16/32/64 with exact zeros."""
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    n_rows = draw(st.integers(0, 40))
    n_classes = draw(st.integers(1, 5))
    width = np.dtype(dtype).itemsize * 8
    elements = st.one_of(st.just(0.0), st.floats(0.0, 1.0, width=width))
    matrix = draw(hnp.arrays(dtype, (n_rows, n_classes), elements=elements))
    # A row of zeros is invalid input, so give such rows their mass in one column.
    zero_rows = matrix.astype(np.float64).sum(axis=1) == 0
    matrix[zero_rows, draw(st.integers(0, n_classes - 1))] = 1
    return matrix


@pytest.mark.parametrize("cls", STRATEGY_CLASSES, ids=lambda cls: cls.name)
@settings(deadline=None, max_examples=60)
@given(probabilities=probability_matrices(), data=st.data())
def test_strategy_contract_property(
    cls: type[QueryStrategy], probabilities: np.ndarray, data: st.DataObject
) -> None:
    strategy = cls()
    n_rows = probabilities.shape[0]
    row_ids = np.array(
        data.draw(st.lists(st.integers(0, 2**63 - 1), min_size=n_rows, max_size=n_rows, unique=True)),
        dtype=np.int64,
    )
    exclude = np.array(
        data.draw(st.lists(st.sampled_from(row_ids.tolist()), unique=True)) if n_rows else [],
        dtype=np.int64,
    )
    n = data.draw(st.integers(0, n_rows + 5))
    seed = data.draw(st.integers(0, 2**63 - 1))
    feature_seed = data.draw(st.integers(0, 2**32 - 1))
    batch = build_batch(
        strategy.needs | strategy.candidate_needs, row_ids, np.random.default_rng(feature_seed), probabilities=probabilities
    )
    batch_before = copy_batch(batch)

    utilities = strategy.utility(batch, seed)
    selection = strategy.query(batch, n, seed, exclude=exclude)
    again = strategy.query(batch, n, seed, exclude=exclude)

    assert utilities.shape == (n_rows,)
    assert utilities.dtype == np.float64
    assert np.all(np.isfinite(utilities))
    assert_valid_selection(selection, row_ids, exclude, n)
    np.testing.assert_array_equal(selection.row_ids, again.row_ids)
    assert_batch_equal(batch, batch_before)


def test_strategies_never_import_ray() -> None:
    code = (
        "import sys, al_ray.strategies; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'torch')); "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
