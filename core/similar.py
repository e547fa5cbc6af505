"""Similar closed tickets from the index the artifact ships: no network call, no NumPy.

The index is a JSON header (`index.json`: the indexed tickets and the query settings) and the
postings of every term as one binary block (`index.bin`: term offsets and ticket numbers as
little-endian uint32, weights as little-endian float64), so that loading it is a copy into
`array`s rather than building an inverted index from JSON at every cold start.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping, Sequence
from operator import neg
from typing import Any

from core.errors import ArtifactError
from core.model import BlockFeatures

INDEX_FORMAT = "postings-v1"


def _uint32(raw: bytes) -> array[int]:
    for code in ("I", "L"):
        values = array(code)
        if values.itemsize == 4:
            values.frombytes(raw)
            if sys.byteorder == "big":
                values.byteswap()
            return values
    raise ArtifactError("this platform has no 4-byte unsigned integer array type")


def _top(values: Sequence[float], keys: Sequence[int], count: int) -> list[tuple[float, int]]:
    """The ``count`` largest values as ``(value, -key)``, largest first, ties to the lower key:
    ``heapq.nlargest(count, zip(values, map(neg, keys)))``. The values alone are sorted first
    (timsort compares floats without building a tuple per item), and only the pairs that can
    make the cut are sorted as pairs."""
    if len(values) > count:
        cut = sorted(values, reverse=True)[count - 1]
        pairs = [(v, -k) for v, k in zip(values, keys, strict=True) if v >= cut]
    else:
        pairs = list(zip(values, map(neg, keys), strict=True))
    pairs.sort(reverse=True)
    return pairs[:count]


class SimilarTickets:
    """An inverted index over truncated TF-IDF vectors of closed tickets (cosine similarity
    against the new ticket's normalised vector of the same block)."""

    def __init__(self, spec: Mapping[str, Any], postings: bytes) -> None:
        try:
            if spec.get("format") != INDEX_FORMAT:
                raise ArtifactError(
                    f"index.json is in format {spec.get('format')!r}, not {INDEX_FORMAT!r}: "
                    "retrain the model with this version"
                )
            self.block = str(spec["block"])
            self.threshold = float(spec["threshold"])
            self.count = int(spec["count"])
            self.query_terms = int(spec["query_terms"])
            self.docs: list[dict[str, Any]] = list(spec["docs"])
            terms, nnz = int(spec["terms"]), int(spec["postings"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"index.json is malformed: {exc!r}") from None
        if len(postings) != 4 * (terms + 1) + 12 * nnz:
            raise ArtifactError(
                f"index.bin holds {len(postings)} bytes, not the {4 * (terms + 1) + 12 * nnz} "
                f"that {terms} terms and {nnz} postings take"
            )
        split = 4 * (terms + 1)
        self._offsets = _uint32(postings[:split])
        self._tickets = _uint32(postings[split : split + 4 * nnz])
        self._weights = array("d")
        self._weights.frombytes(postings[split + 4 * nnz :])
        if sys.byteorder == "big":
            self._weights.byteswap()
        # The checksum already proves the bytes are those training wrote; these checks catch a
        # writer that disagrees with this reader, at the cost of one pass over the tickets.
        if self._offsets[0] != 0 or self._offsets[-1] != nnz:
            raise ArtifactError("index.bin: term offsets do not count its postings")
        if nnz and max(self._tickets) >= len(self.docs):
            raise ArtifactError("index.bin names a ticket that index.json does not list")
        self._terms = terms

    def query(self, features: BlockFeatures) -> tuple[list[dict[str, Any]], bool]:
        """The most similar closed tickets, best first, and whether the best one is close
        enough to flag the new ticket as a possible duplicate. Like the indexed tickets, the
        query keeps only its `query_terms` heaviest terms, which bounds the work per ticket."""
        scores: dict[int, float] = {}
        offsets, tickets, weights = self._offsets, self._tickets, self._weights
        # The heaviest terms, ties to the lower term number.
        heaviest = _top(features.values, features.indices, self.query_terms)
        get = scores.get
        for v, minus_i in heaviest:
            i = -minus_i
            if i >= self._terms:
                continue
            a, b = offsets[i], offsets[i + 1]
            # v * w in C; a ticket's first term sets its score (0.0 + x is x: weights are >= 0).
            products = zip(tickets[a:b], map(v.__mul__, weights[a:b]), strict=True)
            if not scores:
                scores.update(products)
                continue
            for d, vw in products:
                scores[d] = get(d, 0.0) + vw
        # Best score first, ties to the lower ticket number, as above.
        best = _top(list(scores.values()), list(scores), self.count)
        similar = [{**self.docs[-d], "score": round(score, 4)} for score, d in best if score > 0]
        return similar, bool(best) and best[0][0] >= self.threshold
