"""The similar-ticket index as serving reads it: a JSON header and binary postings."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from core.errors import ArtifactError
from core.model import BlockFeatures
from core.similar import INDEX_FORMAT, SimilarTickets

# Three indexed tickets over four terms; term 3 appears in no ticket.
POSTINGS = {0: [(0, 0.8), (2, 0.6)], 1: [(1, 1.0)], 2: [(0, 0.6), (2, 0.8)]}
TERMS = 4


def _index(**overrides: Any) -> tuple[dict[str, Any], bytes]:
    offsets, tickets, weights = [0], [], []
    for term in range(TERMS):
        for ticket, weight in POSTINGS.get(term, []):
            tickets.append(ticket)
            weights.append(weight)
        offsets.append(len(tickets))
    raw = (
        struct.pack(f"<{len(offsets)}I", *offsets)
        + struct.pack(f"<{len(tickets)}I", *tickets)
        + struct.pack(f"<{len(weights)}d", *weights)
    )
    header: dict[str, Any] = {
        "format": INDEX_FORMAT,
        "block": "text",
        "threshold": 0.9,
        "count": 2,
        "query_terms": 3,
        "terms": TERMS,
        "postings": len(tickets),
        "docs": [{"id": f"T-{n}"} for n in range(3)],
    }
    header.update(overrides)
    return header, raw


def _features(pairs: dict[int, float]) -> BlockFeatures:
    indices = tuple(sorted(pairs))
    return BlockFeatures(
        indices, tuple(pairs[i] for i in indices), lambda w: tuple(w[i] for i in indices)
    )


def test_query_ranks_by_cosine_and_flags_a_near_duplicate() -> None:
    index = SimilarTickets(*_index())
    similar, duplicate = index.query(_features({0: 0.8, 2: 0.6}))
    assert [s["id"] for s in similar] == ["T-0", "T-2"]
    assert [s["score"] for s in similar] == [1.0, 0.96]
    assert duplicate is True


def test_a_ticket_sharing_no_term_finds_nothing() -> None:
    similar, duplicate = SimilarTickets(*_index()).query(_features({3: 1.0}))
    assert similar == [] and duplicate is False


def test_an_index_of_another_format_asks_for_a_retrain() -> None:
    with pytest.raises(ArtifactError, match="retrain"):
        SimilarTickets(*_index(format=None))


def test_postings_of_the_wrong_length_are_refused() -> None:
    header, raw = _index()
    with pytest.raises(ArtifactError, match="index.bin holds"):
        SimilarTickets(header, raw[:-8])


def test_postings_naming_an_unknown_ticket_are_refused() -> None:
    header, raw = _index()
    header["docs"] = header["docs"][:2]
    with pytest.raises(ArtifactError, match="does not list"):
        SimilarTickets(header, raw)


def test_top_is_heapq_nlargest_of_value_and_negated_key() -> None:
    import heapq
    import random
    from operator import neg

    from core.similar import _top

    rng = random.Random(3)
    for size in (0, 1, 4, 5, 6, 15, 16, 40, 300):
        for _ in range(50):
            # Few distinct values, so that ties (broken by the lower key) are common.
            values = [rng.choice((0.1, 0.2, 0.25, 0.5, 1.0)) for _ in range(size)]
            keys = rng.sample(range(10 * size + 1), size)
            for count in (1, 5, 15):
                expected = heapq.nlargest(count, zip(values, map(neg, keys), strict=True))
                assert _top(values, keys, count) == expected
