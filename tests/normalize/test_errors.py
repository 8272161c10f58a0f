"""NormalizationError: message shape, attributes, pickling."""

import pickle

import pytest

from dnm.normalize import NormalizationError, parse_price


def test_message_names_input_and_expectation() -> None:
    error = NormalizationError("a price", "call me", "an amount with a currency symbol or code")
    assert str(error) == "cannot read a price in 'call me': expected an amount with a currency symbol or code"
    assert isinstance(error, ValueError)
    assert (error.what, error.value) == ("a price", "call me")


def test_message_names_the_whole_text_when_given() -> None:
    error = NormalizationError("a region", "Narnia", "a country", within="Germany, Narnia")
    assert str(error) == "cannot read a region in 'Narnia' (in 'Germany, Narnia'): expected a country"


def test_long_input_is_shortened_in_the_message() -> None:
    error = NormalizationError("a price", "x" * 10_000, "an amount")
    assert len(str(error)) < 200
    assert error.value == "x" * 10_000


def test_survives_pickling() -> None:
    error = NormalizationError("a region", "Narnia", "a country", within="Germany, Narnia")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.within == "Germany, Narnia"


def test_real_normalizer_error() -> None:
    with pytest.raises(NormalizationError, match=r"cannot read a price in 'call me': expected an amount"):
        parse_price("call me")
