"""Similar closed tickets from the index the artifact ships: no network call, no NumPy."""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Any

from core.errors import ArtifactError
from core.model import BlockFeatures


class SimilarTickets:
    """An inverted index over truncated TF-IDF vectors of closed tickets (cosine similarity
    against the new ticket's normalised vector of the same block)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        try:
            self.block = str(spec["block"])
            self.threshold = float(spec["threshold"])
            self.count = int(spec["count"])
            self.query_terms = int(spec["query_terms"])
            self.docs: list[dict[str, Any]] = list(spec["docs"])
            postings: dict[int, list[tuple[int, float]]] = {}
            for d, (terms, weights) in enumerate(spec["vectors"]):
                for i, w in zip(terms, weights, strict=True):
                    postings.setdefault(int(i), []).append((d, float(w)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"index.json is malformed: {exc!r}") from None
        if len(spec["vectors"]) != len(self.docs):
            raise ArtifactError("index.json: vectors and tickets differ in number")
        self._postings = postings

    def query(self, features: BlockFeatures) -> tuple[list[dict[str, Any]], bool]:
        """The most similar closed tickets, best first, and whether the best one is close
        enough to flag the new ticket as a possible duplicate. Like the indexed tickets, the
        query keeps only its `query_terms` heaviest terms, which bounds the work per ticket."""
        scores: dict[int, float] = {}
        postings = self._postings
        heaviest = heapq.nsmallest(
            self.query_terms,
            zip(features.values, features.indices, strict=True),
            key=lambda pair: (-pair[0], pair[1]),
        )
        for v, i in heaviest:
            for d, w in postings.get(i, ()):
                scores[d] = scores.get(d, 0.0) + v * w
        best = heapq.nlargest(self.count, scores.items(), key=lambda item: (item[1], -item[0]))
        similar = [{**self.docs[d], "score": round(score, 4)} for d, score in best if score > 0]
        return similar, bool(best) and best[0][1] >= self.threshold
