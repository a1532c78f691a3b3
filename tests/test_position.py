"""Tests for digest.summarize.position: the position-aware summarizer and its rules."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
from sumy.nlp.stemmers import Stemmer
from sumy.parsers.plaintext import PlaintextParser
from sumy.summarizers._summarizer import AbstractSummarizer
from sumy.utils import get_stop_words

from digest.summarize import DEFAULT_METHOD, METHODS, explain, summarize
from digest.summarize.position import PositionSummarizer
from digest.summarize.rules import (
    continues_quote,
    is_caption,
    is_fragment,
    is_image_size,
    is_label_run,
    is_question,
    is_quotation,
    is_quote_only,
    is_teaser,
    opens_mid_thought,
    opens_with_connective,
    opens_with_punctuation,
    points_back,
    stands_alone,
    word_count,
)
from digest.summarize.tokenize import Tokenizer, split_sentences

DATA = Path(__file__).parent / "data" / "text"

# A Daily Mail style article: caption lines and page furniture run into the text, the
# way extracted pages deliver them. The facts are in the plain sentences.
LEAD = (
    "A fire at a recycling plant in Leeds forced 300 people from their homes overnight, "
    "West Yorkshire Fire and Rescue Service said on Sunday."
)
NEWS = " ".join(
    [
        "By Sarah Jones For Mailonline.",
        "Blaze: Firefighters tackle the flames at the Kirkstall plant late on Saturday .",
        LEAD,
        "Crews from eight stations fought the blaze at the Kirkstall recycling plant for "
        "more than nine hours before bringing it under control.",
        "Scroll down for video.",
        "Residents of 120 homes near the recycling plant were taken to a leisure centre "
        "where the council provided beds and food.",
        "'It was terrifying.",
        "The smoke was everywhere.'",
        "He said the fire had spread quickly through stacks of paper and plastic.",
        "But the fire service said nobody had been injured.",
        "Station manager Tom Reed (pictured) praised the crews for their work overnight .",
        "Click here for the latest updates on the Leeds fire.",
        "Why did the plant catch fire?",
        "Investigators from the fire service will visit the recycling plant on Monday to "
        "establish the cause of the fire.",
        "The company that runs the plant said it was cooperating fully with the fire service.",
        "Roads around the plant remained closed on Sunday afternoon and the council urged "
        "drivers to avoid the area.",
        "This is the second fire at the plant in three years.",
    ]
)
NEWS_SENTENCES = split_sentences(NEWS)
FURNITURE = (
    "By Sarah Jones",
    "Blaze:",
    "Scroll down",
    "It was terrifying",
    "The smoke was everywhere",
    "(pictured)",
    "Click here",
)
CLEAN = 6  # sentences that stand alone: the lede and five more


def assert_extract(summary: tuple[str, ...], source: list[str]) -> None:
    positions = [source.index(s) for s in summary]  # ValueError if not a source sentence
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


def document(sentences: list[str], language: str = "english") -> ObjectDocumentModel:
    tok = Tokenizer(language)
    return ObjectDocumentModel([Paragraph([Sentence(s, tok) for s in sentences])])


def ranker(language: str = "english") -> PositionSummarizer:
    summarizer = PositionSummarizer(Stemmer(language), language)
    with contextlib.suppress(LookupError):  # sumy has no Russian list; none is needed
        summarizer.stop_words = get_stop_words(language)
    return summarizer


def test_fixture_splits_as_intended() -> None:
    # Guards the tests below: each piece of furniture is a sentence of its own.
    assert len(NEWS_SENTENCES) == 17
    assert LEAD in NEWS_SENTENCES
    for piece in FURNITURE:
        assert sum(piece in s for s in NEWS_SENTENCES) == 1, piece
    assert sum(stands_alone(s) for s in NEWS_SENTENCES) == CLEAN


# --- sentence rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "Blaze: Firefighters tackle the flames at the plant late on Saturday.",
        "Pictured: The Mayor opens the bridge.",
        "Station manager Tom Reed (pictured) praised the crews for their work.",
        "David is pictured with his wife Susan and the plane in 2014.",
        "Rick Bremner (left) and David Bremner (right) rebuilt the plane.",
        "Above, black smoke rises from buildings in the city.",
        "The rebuilt aircraft, which was flown between 1914 and 1916 by their grandfather .",
    ],
)
def test_captions(sentence: str) -> None:
    assert is_caption(sentence)
    assert not stands_alone(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        LEAD,
        "The minister said the picture was clear: prices will rise.",
        "Apple (AAPL) and Google reported results on Thursday.",
        "The score was 2-1 at half time.",
        "The meeting starts at 10:30 on Monday.",
    ],
)
def test_not_captions(sentence: str) -> None:
    assert not is_caption(sentence)


@pytest.mark.parametrize(
    ("sentence", "language"),
    [
        ("He said the fire had spread quickly.", "english"),
        ("But the fire service said nobody had been injured.", "english"),
        ("This is the second fire at the plant in three years.", "english"),
        ("They’re expected to return home on Monday.", "english"),
        ("(CNN) -- It started with neighbors digging through the rubble.", "english"),
        ("HARARE, Zimbabwe (CNN) -- However, the court disagreed.", "english"),
        ("Of this amount, $756 million has already been spent on a plant.", "english"),
        ("Despite that, the board approved the plan.", "english"),
        ("Er sagte, die Busse seien leiser.", "german"),
        ("Mais le ministre a refusé de commenter.", "french"),
        ("Pero el ministro no quiso comentar.", "spanish"),
        ("Но министр отказался от комментариев.", "russian"),
    ],
)
def test_mid_thought_openers(sentence: str, language: str) -> None:
    assert opens_mid_thought(sentence, language)
    assert not stands_alone(sentence, language)


@pytest.mark.parametrize(
    ("sentence", "language"),
    [
        (LEAD, "english"),
        ("This week the council approved the budget for the harbour.", "english"),
        ("Theresa May met the Irish prime minister in Dublin.", "english"),
        ("(CNN) -- The Kenyan government named the attack's mastermind.", "english"),
        ("Apple (AAPL) and Google reported results on Thursday.", "english"),
        ("Of the 30 cars tested, five failed the brake check.", "english"),
        ("On that day the mayor opened the new bridge.", "english"),
        ("Diese Woche stimmte der Gemeinderat für den Plan.", "german"),
        ("Este lunes, el Gobierno aprobó el presupuesto.", "spanish"),
        ("Le gouvernement a présenté son budget mardi.", "french"),
        ("Правительство представило бюджет во вторник.", "russian"),
        ("He said it.", "klingon"),  # no list for the language: no opinion
    ],
)
def test_sentences_that_open_cleanly(sentence: str, language: str) -> None:
    assert not opens_mid_thought(sentence, language)


def test_quotations() -> None:
    assert is_quote_only("'It was terrifying.")  # runs on into the next paragraph
    assert is_quote_only('"The smoke was everywhere."')
    assert is_quote_only("„Wir schaffen das.“")
    assert not is_quote_only('"It is in his nature," Mourinho said.')
    assert not is_quote_only("«Nous sommes prêts», a déclaré le ministre.")
    assert not is_quote_only("The mayor said it was 'a dark day' for the city.")
    assert is_quotation('"It is in his nature," Mourinho said.')
    assert not stands_alone('"It is in his nature," Mourinho said.')


def test_fragments_and_questions() -> None:
    assert is_fragment("he recalled.")
    assert is_fragment("Tebow worked out with the.")
    assert not is_fragment("This is where my interest in the novel came from.")
    assert not is_fragment("1,200 people were evacuated.")
    assert is_question("Why did the plant catch fire?")
    assert is_question('Who could have known?" she asked?')
    assert not is_question(LEAD)
    assert word_count("Crews -- from 8 stations , fought it .") == 6


# --- the summarizer ---------------------------------------------------------------------


def test_is_a_sumy_summarizer_and_the_default_method() -> None:
    assert issubclass(PositionSummarizer, AbstractSummarizer)
    assert DEFAULT_METHOD == METHODS[0] == "position"
    assert summarize(NEWS, sentences=3) == summarize(NEWS, sentences=3, method="position")


def test_plugs_into_sumy_like_the_others() -> None:
    parser = PlaintextParser.from_string(NEWS, Tokenizer("english"))
    picked = ranker()(parser.document, 3)
    assert len(picked) == 3
    assert_extract(tuple(str(s) for s in picked), NEWS_SENTENCES)
    assert str(picked[0]) == LEAD
    assert ranker()(ObjectDocumentModel([]), 3) == ()
    assert ranker()(parser.document, 0) == ()


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8, 100])
def test_extractive_ordered_deterministic_and_clean(count: int) -> None:
    summary = summarize(NEWS, sentences=count)
    assert summary == summarize(NEWS, sentences=count)
    assert_extract(summary, NEWS_SENTENCES)
    assert LEAD in summary  # the lede always makes it
    for sentence in summary:
        assert not any(piece in sentence for piece in FURNITURE), sentence
        if count <= CLEAN:  # there are alternatives to a question or a dangling opener
            assert not is_question(sentence)
            assert not opens_mid_thought(sentence) or _follows_its_predecessor(sentence, summary)
    if count >= 100:  # everything fit to print: the six, then short and mid-thought ones
        assert len(summary) == 10


def _follows_its_predecessor(sentence: str, summary: tuple[str, ...]) -> bool:
    index = NEWS_SENTENCES.index(sentence)
    return NEWS_SENTENCES[index - 1] in summary


def test_roundup_sentence_stands_alone_and_says_what_happened() -> None:
    assert summarize(NEWS, sentences=1) == (LEAD,)
    texts = [
        # the best-connected sentence opens mid-thought, a question, a quote, a teaser
        "Why are bus fares rising again? The regional transport authority will raise bus "
        "fares by ten percent in March to cover higher fuel costs. He said the fuel costs "
        "of the transport authority had doubled since March. Bus fares rose by five "
        "percent last year.",
        "'We had no choice,' the chairman said. But the board voted to close the factory in "
        "Derby with the loss of 400 jobs. The car parts maker will close its factory in Derby "
        "with the loss of 400 jobs, the company said on Friday. Unions called the factory "
        "closure a betrayal of the workers in Derby.",
        "It was quiet. Rescue teams pulled two climbers alive from a crevasse on Mont Blanc "
        "after a search that lasted two days. The climbers were flown to hospital in "
        "Chamonix.",
    ]
    expected = [
        "The regional transport authority will raise bus fares by ten percent in March to "
        "cover higher fuel costs.",
        "The car parts maker will close its factory in Derby with the loss of 400 jobs, the "
        "company said on Friday.",
        "Rescue teams pulled two climbers alive from a crevasse on Mont Blanc after a search "
        "that lasted two days.",
    ]
    for text, want in zip(texts, expected, strict=True):
        (got,) = summarize(text, sentences=1)
        assert got == want
        assert stands_alone(got) and word_count(got) >= 8


def test_mid_thought_opener_is_skipped_when_alternatives_exist() -> None:
    text = (
        "The city council met on Tuesday evening to discuss the harbour. "
        "Councillors spent most of the evening on parking fees and bin collections. "
        "This means the new harbour bridge will open in June, two years later than planned, "
        "and the bridge will cost the harbour authority twice its budget. "
        "The harbour bridge was first proposed in 2015 by the harbour authority. "
        "The harbour authority said the bridge budget had doubled because of steel prices."
    )
    sentences = split_sentences(text)
    this_means = sentences[2]
    for count in (1, 2):
        summary = summarize(text, sentences=count)
        assert this_means not in summary
        assert len(summary) == count
    # Next to the sentence it continues it reads fine, so then it may be chosen.
    for count in (3, 4, 5):
        summary = summarize(text, sentences=count)
        assert this_means not in summary or sentences[1] in summary
    assert this_means in summarize(text, sentences=5)


POOL = [
    "The city council approved the harbour budget on Tuesday after a long debate.",
    "But the opposition said the harbour budget ignored the rail network.",
    "He said the harbour plan would cost twice as much as promised.",
    "The harbour authority expects the new quay to open in June next year.",
    "This is the third harbour plan in five years.",
    "They will vote again on the rail network in March.",
    "Residents welcomed the plan for a new ferry terminal at the harbour.",
    "However, the ferry operators want lower harbour fees first.",
    "Blaze: Firefighters at the harbour quay on Friday .",
    '"We are ready," the harbour master said on Tuesday morning.',
    "Is the harbour ready for bigger ships?",
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.sampled_from(POOL), min_size=1, max_size=12, unique=True),
    count=st.integers(1, 4),
)
def test_rules_hold_for_any_article(picks: list[str], count: int) -> None:
    text = " ".join(picks)
    summary = summarize(text, sentences=count)
    clean = [s for s in picks if stands_alone(s)]
    # A lone sentence that cannot stand alone is worse than none (the title is shown).
    assert 1 <= len(summary) <= count or (count == 1 and not clean and not summary)
    assert_extract(summary, picks)
    for sentence in summary:
        assert not is_caption(sentence) or not clean
        previous = picks.index(sentence) - 1
        if opens_mid_thought(sentence) and (previous >= 0 or opens_with_connective(sentence)):
            # only right after the sentence it continues, or for want of anything better; a
            # text may open with "He said …" (the lead), but not with "But …"
            assert (previous >= 0 and picks[previous] in summary) or len(clean) < count
    if count == 1 and clean:
        assert stands_alone(summary[0])


def test_a_repeated_lede_is_skipped() -> None:
    repeat = (
        "A fire at a recycling plant in Leeds forced 300 people from their homes overnight, "
        "the fire service said."
    )
    text = f"{LEAD} {repeat} " + " ".join(NEWS_SENTENCES[3:])
    decisions = explain(text, sentences=3)
    assert [d.text for d in decisions if d.chosen][0] == LEAD
    (skip,) = [d for d in decisions if d.text == repeat]
    assert not skip.chosen and skip.reason.startswith("repeats-earlier")


def test_position_prior_decides_when_nothing_overlaps() -> None:
    sentences = [
        "Alpha company reported record profits.",
        "Bravo stadium hosted a sold-out concert.",
        "Charlie museum reopened after renovation.",
        "Delta airline cancelled twelve flights.",
        "Echo school won the regional chess title.",
    ]
    picked = ranker()(document(sentences), 2)
    assert [str(s) for s in picked] == sentences[:2]


def test_short_inputs() -> None:
    one = "The council approved the budget on Tuesday after a long debate."
    assert summarize(one, sentences=1) == (one,)
    assert summarize(one, sentences=3) == (one,)
    assert summarize("", sentences=3) == ()
    assert summarize("Share\n\nRead more", sentences=3) == ()
    # Two sentences, three asked: both, the second after the one it continues.
    two = f"{one} It passed by 31 votes to 9 after six hours."
    assert summarize(two, sentences=3) == tuple(split_sentences(two))
    # Nothing but a caption: better than nothing, but never alongside real sentences.
    caption = "Pictured: The mayor cuts the ribbon at the new harbour bridge."
    assert summarize(caption, sentences=2) == (caption,)
    assert caption not in summarize(f"{caption} {one}", sentences=2)


def test_500_sentences_fast_and_extractive() -> None:
    subjects = ["The council", "The mayor", "Residents", "The harbour board", "Engineers"]
    verbs = ["approved", "delayed", "reviewed", "criticised", "funded", "rejected"]
    objects = ["bridge", "tram line", "school", "hospital", "ferry terminal", "library", "park"]
    text = " ".join(
        f"{subjects[i % 5]} {verbs[i % 6]} the {objects[i % 7]} plan in week {i} of talks."
        for i in range(500)
    )
    sentences = split_sentences(text)
    assert len(sentences) == 500
    summary = summarize(text, sentences=3)
    assert len(summary) == 3
    assert_extract(summary, sentences)


def test_max_words_is_never_exceeded() -> None:
    long = (
        "The council, which had met on Tuesday for the first time since the summer break "
        "and after months of talks with residents, unions, bus operators, cycling groups, "
        "business owners and the regional government, finally approved the plan that would "
        "double the money spent on buses, trams and cycle lanes over the next five years "
        "in the whole region and in the three largest cities of the neighbouring county."
    )
    assert word_count(long) > 60
    text = f"{long} {NEWS}"
    for count in (1, 3, 20):
        assert all(word_count(s) <= 60 for s in summarize(text, sentences=count))
    parser = PlaintextParser.from_string(text, Tokenizer("english"))
    assert all(word_count(str(s)) <= 60 for s in ranker()(parser.document, 20))
    assert all(word_count(s) <= 25 for s in summarize(text, sentences=20, max_words=25))


@pytest.mark.parametrize("language", ["german", "french", "spanish", "russian"])
def test_other_languages(language: str) -> None:
    text = (DATA / f"{language}.txt").read_text(encoding="utf-8")
    sentences = split_sentences(text, language)
    for count in (1, 2, 3):
        summary = summarize(text, sentences=count, language=language)
        assert len(summary) == count
        assert_extract(summary, sentences)
        assert summary == summarize(text, sentences=count, language=language)
    (single,) = summarize(text, sentences=1, language=language)
    assert stands_alone(single, language)
    parser = PlaintextParser.from_string(text, Tokenizer(language))
    assert len(ranker(language)(parser.document, 2)) == 2


def test_language_codes_are_accepted() -> None:
    assert PositionSummarizer(language="de").language == "german"
    assert opens_mid_thought("Er sagte nein.", "de")


# --- one-liners that stand alone (issue 16: real cases from a day of 125 articles) ------


@pytest.mark.parametrize(
    "sentence",
    [
        "In a new case study out Monday, they detail how the man lost his savings.",
        "Enter South Dakota to throw down the gauntlet.",
        "From there, I tried to enter California… ,” he said.",
        "They said the plan would cost twice as much as promised.",
        "His lawyer said the charges were baseless.",
        "However, the ferry operators want lower harbour fees first.",
        "Meanwhile, prices rose again in the capital.",
        "Later, police said the driver had been drinking.",
        "So the council voted against it on Tuesday.",
        "These are the cheapest flights of the year.",
        "It comes as Apple is believed to be preparing a new version of the TV box.",
    ],
)
def test_sentences_that_point_back(sentence: str) -> None:
    assert points_back(sentence)
    assert not stands_alone(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "A UK man's innocent decision to fix his own car cost him his savings.",
        "In its annual report, the IMF said growth slowed in every region.",
        "After the vote, the senator left the chamber without a word.",
        "The players’ union said no to the new contract on Friday.",
        "Enterprise software sales rose for the third quarter in a row.",
        "This week the council approved the harbour budget after a long debate.",
        "Earlier this month, NASA announced the newest milestone of its launch system.",
        "Later this year, Lexus will sell the convertible in Europe and Japan.",
    ],
)
def test_sentences_that_do_not_point_back(sentence: str) -> None:
    assert not points_back(sentence)
    assert stands_alone(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "– People across the nation are talking about it.",
        "— and the crowd went wild.",
        "… and then the lights went out.",
        "” she added, before leaving the stage.",
    ],
)
def test_openings_with_punctuation(sentence: str) -> None:
    assert opens_with_punctuation(sentence)
    assert not stands_alone(sentence)
    assert not opens_with_punctuation("“We won,” the coach said after the final.")


def test_quote_that_began_earlier() -> None:
    assert continues_quote("From there, I tried to enter California… ,” he said.")
    assert continues_quote("We were lucky,' she said after the rescue.")
    assert not continues_quote("'We were lucky,' she said after the rescue.")
    assert not continues_quote("The players’ union said no.")
    assert not continues_quote("He's the best player we've had, the coach said.")


def oneliner(text: str, **kwargs: object) -> str | None:
    summary = summarize(text, sentences=1, **kwargs)  # type: ignore[arg-type]
    assert len(summary) <= 1
    return summary[0] if summary else None


def test_oneliner_skips_a_pronoun_after_an_opening_phrase_for_the_real_lede() -> None:
    lede = "A UK man's innocent decision to charge his phone in a hotel room led to a £3,000 bill."
    text = (
        "In a new case study out Monday, they detail how the man ran up the bill in a "
        f"single night. {lede} The hotel later refunded him."
    )
    assert oneliner(text) == lede


def test_oneliner_never_opens_with_a_fragment_a_dash_or_a_staged_scene() -> None:
    good = "South Dakota lawmakers passed a bill banning the sale of lab-grown meat."
    for opener in (
        "to her Instagram page to share some stunning photos of herself.",
        "– People across the nation are talking about it and sharing the news.",
        "Enter South Dakota to throw down the gauntlet.",
        "From there, I tried to enter California… ,” he said.",
        "But the opposition said the harbour budget ignored the rail network.",
    ):
        assert oneliner(f"{opener} {good}") == good, opener
        assert oneliner(opener) is None  # nothing that stands alone: none at all


def test_oneliner_prefers_a_shorter_passing_sentence_to_cutting_one() -> None:
    long = (
        "The regional transport authority, which met on Tuesday for the first time since "
        "the summer, will raise bus and tram fares across the whole region by ten percent "
        "in March to cover the higher cost of fuel and wages."
    )
    short = "Bus and tram fares in the region will rise by ten percent in March."
    assert word_count(long) > 30
    assert oneliner(f"{long} {short}") == short
    assert oneliner(f"{long} {short}", max_words_oneliner=50) == long
    # Nothing shorter passes: the long one is cut at the cap and marked.
    cut = oneliner(long)
    assert cut is not None and cut.endswith("…") and word_count(cut) == 30
    assert long.startswith(cut[:-1])


def test_oneliner_skips_a_repeat_of_the_title() -> None:
    title = "Council approves the harbour budget for next year"
    text = (
        "The council approves the harbour budget for next year. "
        "The harbour budget passed by 31 votes to 9 after a six-hour debate on Tuesday."
    )
    assert oneliner(text, title=title) == split_sentences(text)[1]
    assert oneliner(text) == split_sentences(text)[0]


def test_explain_names_the_rule_for_each_skipped_lead_sentence() -> None:
    text = (
        "By Sarah Jones For Mailonline. Scroll down for video. "
        f"{LEAD} The plant was closed on Sunday, the council said."
    )
    decisions = explain(text, sentences=2)
    assert [(d.index, d.chosen) for d in decisions] == [
        (0, False),
        (1, False),
        (2, True),
        (3, True),
    ]
    assert decisions[0].reason.startswith("boilerplate")
    assert decisions[1].reason.startswith("boilerplate")
    assert decisions[2].reason.startswith("lead")
    one = explain(f"They said no. {LEAD}", sentences=1)
    assert one[0].reason.startswith("too-short") and one[1].chosen
    lone = explain(f"They said the fire was out by morning. {LEAD}", sentences=1)
    assert lone[0].reason.startswith("points-back") and lone[1].text == LEAD


# --- feed-text junk (issue 16: real cases from feeds whose pages gave no text) ----------


def test_feed_junk_rules() -> None:
    assert is_image_size("360 x 640 (53,6 килобайт)")
    assert is_image_size("1920×1080 (2.4 MB)")
    assert not is_image_size("The phone has a 6.1-inch 2532 x 1170 display with thin bezels.")
    assert is_label_run("Разработчик: ZXStyles Язык: English Состояние: Free")
    assert is_label_run("Developer: ZXStyles Language: English Price: Free.")
    assert not is_label_run("Kelly said: 'Despite the pain, it was worth it.'")
    assert not is_label_run("He said: 'I told him: go home.'")
    assert is_teaser("La Juventus ha giocato una partita al limite...")
    assert is_teaser("The council met on Tuesday to discuss the […]")
    assert not is_teaser("What comes next?...")
    assert not is_teaser("The council met on Tuesday.")


def test_feed_junk_is_never_a_summary_and_a_teaser_only_a_marked_last_resort() -> None:
    good = "The studio released a new version of its retro arcade game on Friday."
    for junk in (
        "360 x 640 (53,6 килобайт)",
        "Разработчик: ZXStyles Язык: English Состояние: Free…",
        "La Juventus ha giocato una partita al limite...",
    ):
        for count in (1, 3):
            assert summarize(f"{junk}\n\n{good}", sentences=count) == (good,), junk
    assert summarize("360 x 640 (53,6 килобайт)", sentences=1) == ()
    assert summarize("Разработчик: ZXStyles Язык: English Состояние: Free", sentences=3) == ()
    # A teaser alone: better than nothing, and marked as cut.
    teaser = "La Juventus ha giocato una partita al limite della perfezione contro il Milan..."
    for count in (1, 3):
        (out,) = summarize(teaser, sentences=count)
        assert out == teaser[:-3] + "…"
    (d,) = explain(teaser, sentences=1)
    assert d.chosen and d.reason.startswith("last resort (teaser")
    assert summarize(
        f"bash - Expansão de Parâmetros. {good}", sentences=1, title="bash - Expansão de Parâmetros"
    ) == (good,)


def test_word_caps_count_every_whitespace_token() -> None:
    # "--" and "-" are no words to `word_count`, but a reader (and a judge) counts them.
    dashed = (
        "The mayor -- who took office in May -- said the harbour bridge "
        + " ".join(["will", "open", "in", "June", "-", "two", "years", "late", "-", "and", "cost"])
        + " twice its budget of four million pounds today."
    )
    assert word_count(dashed) <= 30 < len(dashed.split())
    short = "The harbour bridge will open in June, two years later than planned."
    assert oneliner(f"{dashed} {short}") == short
    for count in (1, 3):
        for s in summarize(f"{dashed} {short}", sentences=count, max_words=25):
            assert len(s.split()) <= 25
