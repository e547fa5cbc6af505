"""`core.model._largest` (the top terms of an explanation and of the tags) is the plain sort."""

from __future__ import annotations

from itertools import repeat

from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import _largest


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from([-1.5, -0.25, 0.0, 0.125, 0.5, 0.5, 2.0, 3.75]), max_size=80),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=0, max_value=3),
)
def test_largest_is_the_head_of_the_plain_sort(values: list[float], count: int, block: int) -> None:
    keys = list(range(len(values), 0, -1))  # ties between equal values go to the keys
    assert (
        _largest(values, count, keys)
        == sorted(zip(values, keys, strict=True), reverse=True)[:count]
    )
    assert (
        _largest(values, count, repeat(block), keys)
        == (sorted(zip(values, repeat(block), keys, strict=False), reverse=True)[:count])
    )
