"""Hashed text features: tokens, bigrams, log counts and unit rows, checked by hand."""

import numpy as np

from al_ray.data.text_features import hash_feature_names, hashed_text_features


def test_unigrams_and_bigrams_hashed():
    row = hashed_text_features(["OK ok lar"])[0]

    # Lowercased tokens ok, ok, lar give the n-grams ok x2, lar, "ok ok" and "ok lar".
    # Their signed 32-bit MurmurHash3 (seed 0), absolute value modulo 4096, gives the columns.
    raw = {2977: np.log1p(2), 1485: np.log1p(1), 726: np.log1p(1), 30: np.log1p(1)}
    norm = np.sqrt(sum(value**2 for value in raw.values()))
    assert sorted(np.flatnonzero(row).tolist()) == sorted(raw)
    for column, value in raw.items():
        assert row[column] == np.float32(value / norm)


def test_row_has_unit_length():
    features = hashed_text_features(["Free entry in 2 a wkly comp", "Ok lar... Joking wif u oni..."])

    assert features.shape == (2, 4096)
    assert features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-6)


def test_text_without_tokens_gives_zeros():
    # Single characters are not tokens, so this text has none.
    features = hashed_text_features([":) u k", "fine"])

    assert not features[0].any()
    assert np.linalg.norm(features[1]) == np.float32(1.0)


def test_rows_independent_of_each_other():
    alone = hashed_text_features(["call me later"])
    together = hashed_text_features(["win a prize now", "call me later"])

    np.testing.assert_array_equal(alone[0], together[1])


def test_feature_names_padded():
    assert hash_feature_names(4096)[:2] == ("hash_0000", "hash_0001")
    assert hash_feature_names(10)[-1] == "hash_9"
