"""Count and time windows over a stream of live rows."""

from __future__ import annotations

import numpy as np
import pytest

from al_ray.monitoring.config import WindowConfig
from al_ray.monitoring.errors import DriftError
from al_ray.monitoring.windows import CountWindow, TimeWindow, make_window


def _rows(start, stop, width=2):
    # Row i contains the value i in every column, so a window's rows name themselves.
    return np.repeat(np.arange(start, stop, dtype=float)[:, None], width, axis=1)


def test_count_window_tumbling():
    windows = CountWindow(4)

    first = windows.add(_rows(0, 3))
    second = windows.add(_rows(3, 6))
    third = windows.add(_rows(6, 9))
    rest = windows.flush()

    assert first == []
    assert [(w.index, w.first_row, w.end_row) for w in second + third] == [(0, 0, 4), (1, 4, 8)]
    np.testing.assert_array_equal(third[0].features[:, 0], [4, 5, 6, 7])
    assert (rest.index, rest.first_row, rest.end_row, len(rest)) == (2, 8, 9, 1)
    assert windows.flush() is None
    assert windows.rows_seen == 9


def test_count_window_many_in_one_add():
    windows = CountWindow(3).add(_rows(0, 10))

    assert [w.first_row for w in windows] == [0, 3, 6]
    assert windows[2].label == "window 2 (rows 6-8)"


def test_count_window_overlapping_step():
    windows = CountWindow(4, step=2)

    emitted = windows.add(_rows(0, 5)) + windows.add(_rows(5, 8))

    assert [(w.first_row, w.end_row) for w in emitted] == [(0, 4), (2, 6), (4, 8)]
    np.testing.assert_array_equal(emitted[1].features[:, 0], [2, 3, 4, 5])


def test_count_window_step_beyond_size_skips_rows():
    emitted = CountWindow(2, step=5).add(_rows(0, 12))

    assert [(w.first_row, w.end_row) for w in emitted] == [(0, 2), (5, 7), (10, 12)]
    np.testing.assert_array_equal(emitted[1].features[:, 0], [5, 6])


def test_count_window_keeps_predictions_and_uncertainty():
    windows = CountWindow(3)

    emitted = windows.add(_rows(0, 4), predictions=np.array(list("abcd")), uncertainty=np.arange(4) / 10)

    assert emitted[0].predictions.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(emitted[0].uncertainty, [0.0, 0.1, 0.2])
    assert windows.flush().predictions.tolist() == ["d"]


def test_count_window_rejected_batch_changes_nothing():
    windows = CountWindow(2)
    with pytest.raises(DriftError):
        windows.add(_rows(0, 2), uncertainty=np.zeros(3))

    emitted = windows.add(_rows(0, 2))

    assert windows.rows_seen == 2
    assert emitted[0].uncertainty is None


def test_count_window_inconsistent_extras():
    windows = CountWindow(3)
    windows.add(_rows(0, 2), uncertainty=np.zeros(2))

    with pytest.raises(DriftError, match="some batches of this stream carry uncertainty and others do not"):
        windows.add(_rows(2, 4))


def test_count_window_bad_rows():
    windows = CountWindow(3)
    windows.add(_rows(0, 2))

    with pytest.raises(DriftError, match="live rows have 3 features, but earlier rows of this stream had 2"):
        windows.add(_rows(2, 4, width=3))
    with pytest.raises(DriftError, match=r"live rows must be a 2-D array of shape \(n_rows, n_features\), got shape \(4,\)"):
        windows.add(np.zeros(4))
    with pytest.raises(DriftError, match=r"predictions must have one entry per live row \(2\), got shape \(3,\)"):
        CountWindow(3).add(_rows(0, 2), predictions=np.zeros(3))
    with pytest.raises(DriftError, match="a count window needs size >= 1, got 0"):
        CountWindow(0)


def test_time_window_periods():
    windows = TimeWindow(10.0)
    times = np.array([100.0, 103, 109.5, 110, 111, 135, 136])

    emitted = windows.add(_rows(0, 7), timestamps=times)
    rest = windows.flush()

    # Periods [100, 110), [110, 120) and [130, 140) have rows. [120, 130) has none, so it yields no window.
    assert [(w.first_row, w.end_row, w.start_time, w.end_time) for w in emitted] == [
        (0, 3, 100.0, 110.0),
        (3, 5, 110.0, 120.0),
    ]
    assert (rest.first_row, rest.end_row, rest.start_time) == (5, 7, 130.0)
    assert rest.label == "window 2 (rows 5-6, t 130-140 s)"


def test_time_window_across_adds():
    windows = TimeWindow(5.0)

    assert windows.add(_rows(0, 2), timestamps=[0.0, 4.9]) == []
    emitted = windows.add(_rows(2, 3), timestamps=[5.0])

    assert [(w.first_row, w.end_row) for w in emitted] == [(0, 2)]


def test_time_window_rejects_time_going_back():
    windows = TimeWindow(5.0)
    windows.add(_rows(0, 2), timestamps=[0.0, 3.0])

    with pytest.raises(DriftError, match="row 3 of the stream is earlier than the row before it"):
        windows.add(_rows(2, 4), timestamps=[3.0, 2.0])
    with pytest.raises(DriftError, match="timestamps must be a 1-D array of finite seconds"):
        windows.add(_rows(2, 3), timestamps=[np.nan])


def test_make_window_from_config():
    count = make_window(WindowConfig(size=50, step=10))
    time = make_window(WindowConfig(kind="time", seconds=60))

    assert isinstance(count, CountWindow)
    assert (count.size, count.step) == (50, 10)
    assert isinstance(time, TimeWindow)
    assert time.seconds == 60.0
