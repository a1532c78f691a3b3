"""Rank news sentences by where they stand and what follows from them: a sumy summarizer.

News puts the key facts first, so "the first three sentences" (Lead-3) beats every
classic extractive method on news. `PositionSummarizer` keeps that prior and lets
centrality overrule it where the lead is weak (a scene-setting opener, a quote, a
photo caption run into the text):

1. score = (prior + w x centrality) / (1 + w), with the position prior 1/(1+i)^decay
   and PacSum's directed centrality (Zheng & Lapata, 2019) scaled to 0..1: a sentence
   earns its similarity to the sentences *after* it and loses twice its similarity to
   those before it, since a sentence that later ones elaborate on is a lede and one
   that repeats earlier ones is not. Similarity is the cosine of idf-weighted sets of
   stemmed content words.
2. The rules of `digest.summarize.rules` sort sentences into tiers: boilerplate is never
   ranked; captions, quote fragments, pieces of sentences and over-long ones stay in the
   graph (a caption that repeats a fact is evidence that it matters) but are chosen
   only when nothing else is; a sentence that opens mid-thought ("He said", "This",
   "But") is chosen only right after the sentence it continues, or for want of others;
   quotations and questions score half.
3. MMR (Carbonell & Goldstein, 1998): each pick is penalized by its similarity to what is
   already chosen, so three sentences tell three things.

Asked for one sentence (a roundup item), it picks one that stands alone and says what
happened: no quotation, question, caption or mid-thought opener, and at least 8 words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy
from sumy.models.dom import Sentence
from sumy.nlp.stemmers import null_stemmer
from sumy.summarizers._summarizer import AbstractSummarizer

from digest.summarize.rules import (
    is_boilerplate,
    is_caption,
    is_fragment,
    is_question,
    is_quotation,
    is_quote_only,
    opens_mid_thought,
    word_count,
)
from digest.summarize.tokenize import normalize_language

NDArray = numpy.ndarray[Any, Any]


class PositionSummarizer(AbstractSummarizer):  # type: ignore[misc]
    """Pick sentences by position prior + directed centrality, with quality rules and MMR."""

    # Chosen on one half of a CNN/Daily Mail development set (the other half and a BBC
    # set held out); see bench/eval_summarizer.py. Results move little near these values.
    position_decay = 0.5  # prior 1/(1+i)^decay: how fast the bonus for coming early fades
    centrality_weight = 4.0  # directed centrality (scaled to 0..1) against the prior
    backward_weight = -2.0  # PacSum's lambda1, on similarity to *preceding* sentences
    redundancy = 0.3  # MMR: score minus this times the top similarity to a chosen sentence
    flaw_penalty = 0.5  # a quotation or a question scores (1 - this) times as much
    min_words = 4  # fewer words is a fragment
    max_words: int | None = 60  # more words is never chosen (None: no cap)
    standalone_min_words = 8  # a lone sentence needs this many words to say what happened

    def __init__(
        self, stemmer: Callable[[str], str] = null_stemmer, language: str = "english"
    ) -> None:
        super().__init__(stemmer)
        self.language = normalize_language(language)
        self._stop_words: frozenset[str] = frozenset()

    @property
    def stop_words(self) -> frozenset[str]:
        """Return the words ignored when comparing sentences."""
        return self._stop_words

    @stop_words.setter
    def stop_words(self, words: Iterable[str]) -> None:
        self._stop_words = frozenset(map(self.normalize_word, words))

    def __call__(self, document: Any, sentences_count: int) -> tuple[Sentence, ...]:
        """Return up to `sentences_count` sentences of `document`, in document order."""
        sentences = list(document.sentences)
        count = int(sentences_count)
        if not sentences or count <= 0:
            return ()
        texts = [str(s) for s in sentences]
        tiers = [self._tier(t, count == 1) for t in texts]
        # Captions, quote fragments and the like stay in the graph though they are not
        # chosen: a caption that repeats a fact is evidence that the fact matters.
        graph = [i for i, tier in enumerate(tiers) if tier < 3]
        if not graph:
            return ()
        similarity = self._similarity([sentences[i] for i in graph])
        # Repeating a sentence that could be chosen instead marks a restatement; repeating
        # a caption (or, for a lone sentence, a quote or "He said …") does not.
        debit = numpy.array([tiers[i] == 0 for i in graph], dtype=float)
        scores = self._scores(similarity, debit)
        picked = self._select(
            [texts[i] for i in graph], [tiers[i] for i in graph], scores, similarity, count
        )
        return tuple(sentences[graph[k]] for k in sorted(picked))

    def rate_sentences(self, document: Any) -> dict[Sentence, float]:
        """Return each sentence's score before the quality rules and redundancy control."""
        sentences = list(document.sentences)
        tiers = [self._tier(str(s), False) for s in sentences]
        graph = [i for i, tier in enumerate(tiers) if tier < 3]
        ratings = dict.fromkeys(sentences, 0.0)  # boilerplate is not rated at all
        if graph:
            debit = numpy.array([tiers[i] == 0 for i in graph], dtype=float)
            scores = self._scores(self._similarity([sentences[i] for i in graph]), debit)
            ratings.update((sentences[i], float(x)) for i, x in zip(graph, scores, strict=True))
        return ratings

    def _similarity(self, sentences: Sequence[Sentence]) -> NDArray:
        # Cosine of idf-weighted sets of stemmed content words (each word once, as in
        # sumy's TextRank); the idf is smoothed so a word in every sentence counts a little.
        vocabulary: dict[str, int] = {}
        rows: list[list[int]] = []
        stem = self._stemmer
        for s in sentences:
            # sorted, so the matrix and its float sums do not depend on the hash seed
            terms = sorted({stem(w) for w in {w.lower() for w in s.words} - self._stop_words})
            rows.append([vocabulary.setdefault(t, len(vocabulary)) for t in terms])
        n = len(rows)
        weights = numpy.zeros((n, max(len(vocabulary), 1)))
        for row, columns in enumerate(rows):
            weights[row, columns] = 1.0
        weights *= numpy.log((1 + n) / (1 + weights.sum(axis=0))) + 1.0
        norms = numpy.linalg.norm(weights, axis=1)
        unit = weights / numpy.where(norms > 0, norms, 1.0)[:, None]
        similarity: NDArray = unit @ unit.T
        numpy.fill_diagonal(similarity, 0.0)
        return similarity

    def _scores(self, similarity: NDArray, debit: NDArray | None = None) -> NDArray:
        n = len(similarity)
        prior = numpy.arange(1, n + 1, dtype=float) ** -self.position_decay
        # PacSum: credit for the sentences that follow, debit for those that precede.
        following = numpy.triu(similarity, 1).sum(axis=1)
        earlier = numpy.tril(similarity, -1)
        if debit is not None:
            earlier = earlier * debit[None, :]
        preceding = earlier.sum(axis=1)
        centrality = following + self.backward_weight * preceding
        spread = float(centrality.max() - centrality.min())
        scaled = (centrality - centrality.min()) / spread if spread > 0 else numpy.zeros(n)
        w = self.centrality_weight
        scores: NDArray = (prior + w * scaled) / (1.0 + w)
        return scores

    def _tier(self, text: str, single: bool) -> int:
        # 0: eligible; 1: only when too few tier-0 sentences are left; 2: only when
        # nothing else can be chosen at all; 3: never, not even ranked.
        if is_boilerplate(text, self.language):
            return 3
        words = word_count(text)
        if (
            words < self.min_words
            or (self.max_words is not None and words > self.max_words)
            or is_caption(text)
            or is_quote_only(text)
            or is_fragment(text, self.language)
        ):
            return 2
        if single and (
            words < self.standalone_min_words
            or is_quotation(text)
            or is_question(text)
            or opens_mid_thought(text, self.language)
        ):
            return 1  # a lone sentence must stand alone and say what happened
        return 0

    def _select(
        self,
        texts: Sequence[str],
        tiers: Sequence[int],
        scores: NDArray,
        similarity: NDArray,
        count: int,
    ) -> list[int]:
        # Greedy MMR within tiers: a lower tier always wins, then the higher value.
        mid = [opens_mid_thought(t, self.language) for t in texts]
        value = [
            float(x) * (1.0 - self.flaw_penalty if is_quotation(t) or is_question(t) else 1.0)
            for t, x in zip(texts, scores, strict=True)
        ]
        chosen: list[int] = []
        taken = [False] * len(texts)
        overlap = numpy.zeros(len(texts))  # top similarity to a chosen sentence so far
        while len(chosen) < min(count, len(texts)):
            best: tuple[int, float, int] | None = None  # (tier, -value, index): least wins
            for i, tier in enumerate(tiers):
                if taken[i]:
                    continue
                if tier == 0 and mid[i] and not (i > 0 and taken[i - 1]):
                    tier = 1  # dangling, unless the sentence it continues is chosen too
                key = (tier, -round(value[i] - self.redundancy * float(overlap[i]), 9), i)
                if best is None or key < best:
                    best = key
            if best is None or (best[0] == 2 and chosen):
                break  # a caption or fragment only when it is that or nothing
            chosen.append(best[2])
            taken[best[2]] = True
            overlap = numpy.maximum(overlap, similarity[:, best[2]])
        return chosen
