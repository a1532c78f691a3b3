"""sumy's classic rankers (LexRank, TextRank, LSA, Luhn, KL, SumBasic, Edmundson), made
repeatable; imported only when one of them is configured, since they need numpy and
the default `position` method needs neither.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy
from sumy.summarizers.edmundson import EdmundsonSummarizer
from sumy.summarizers.kl import KLSummarizer
from sumy.summarizers.lex_rank import LexRankSummarizer
from sumy.summarizers.lsa import LsaSummarizer
from sumy.summarizers.luhn import LuhnSummarizer
from sumy.summarizers.sum_basic import SumBasicSummarizer
from sumy.summarizers.text_rank import TextRankSummarizer


class StableRanking:
    """Rank by rating, ties to the earlier sentence, ignoring float noise below 1e-9.

    sumy sums over sets whose order depends on the hash seed, so near-equal ratings can
    swap between runs; rounding and an explicit tie-break make the choice repeatable.
    """

    @staticmethod
    def _get_best_sentences(
        sentences: Sequence[Any], count: int, rating: Any, *args: Any, **kwargs: Any
    ) -> tuple[Any, ...]:
        scored: list[tuple[float, int, Any]] = []
        for order, sentence in enumerate(sentences):
            value = (
                rating[sentence] if isinstance(rating, dict) else rating(sentence, *args, **kwargs)
            )
            r = float(value)
            scored.append((round(r, 9) if math.isfinite(r) else -math.inf, order, sentence))
        best = sorted(scored, key=lambda t: (-t[0], t[1]))[: int(count)]
        return tuple(s for _, _, s in sorted(best, key=lambda t: t[1]))


class LexRank(StableRanking, LexRankSummarizer):  # type: ignore[misc]
    def _create_matrix(
        self,
        sentences: list[list[str]],
        threshold: float,
        tf_metrics: list[dict[str, float]],
        idf_metrics: dict[str, float],
    ) -> Any:
        # sumy's matrix, vectorized: its nested Python loops over sentence pairs take
        # most of the time on a news article. Same idf-modified cosine, same threshold,
        # same degree normalization.
        terms = {t: i for i, t in enumerate(sorted(idf_metrics))}
        weights = numpy.zeros((len(sentences), len(terms)))
        for row, tf in enumerate(tf_metrics):
            for term, value in tf.items():
                weights[row, terms[term]] = value * idf_metrics[term]
        norms = numpy.sqrt((weights**2).sum(axis=1))
        dots = weights @ weights.T
        denominators = numpy.outer(norms, norms)
        cosine = numpy.divide(
            dots, denominators, out=numpy.zeros_like(dots), where=denominators > 0
        )
        matrix = (cosine > threshold).astype(float)
        degrees = numpy.maximum(matrix.sum(axis=1), 1.0)
        return matrix / degrees[:, None]


class TextRank(StableRanking, TextRankSummarizer):  # type: ignore[misc]
    pass


class Lsa(StableRanking, LsaSummarizer):  # type: ignore[misc]
    def _create_dictionary(self, document: Any) -> dict[str, int]:
        # Sorted, so the term-matrix rows (and the SVD) do not depend on the hash seed.
        words = (self.normalize_word(w) for w in document.words)
        unique = sorted({self.stem_word(w) for w in words if w not in self._stop_words})
        return {w: i for i, w in enumerate(unique)}


class Luhn(StableRanking, LuhnSummarizer):  # type: ignore[misc]
    pass


class Kl(StableRanking, KLSummarizer):  # type: ignore[misc]
    pass


class SumBasic(StableRanking, SumBasicSummarizer):  # type: ignore[misc]
    pass


class Edmundson(StableRanking, EdmundsonSummarizer):  # type: ignore[misc]
    pass


RANKERS: dict[str, Callable[[Any], Any]] = {
    "lexrank": LexRank,
    "textrank": TextRank,
    "lsa": Lsa,
    "luhn": Luhn,
    "kl": Kl,
    "sumbasic": SumBasic,
}
