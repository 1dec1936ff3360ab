"""Deterministic synthetic sentiment corpus on which unsupervised pretraining helps.

Design, and why (each choice was measured with a 2-layer, 128-wide
ModernBERT-style encoder pretrained for 1500 masked-LM steps):

* Sentiment lives in many invented *polar words* (pseudo-words such as
  ``gravolen``), half positive and half negative. Their spelling is random, so
  nothing in a word's form tells its polarity: it can only be learned from
  context, either from labels or from the unlabeled text.
* The unlabeled split is mostly *gloss* paragraphs, the local, learnable
  evidence of meaning that real text has (definitions, synonyms, negations:
  "gravolen means good", "gravolen and tesmirak mean the same thing",
  "not pludak means good"), plus unlabeled reviews. Review co-occurrence
  alone is too weak a signal at this scale.
* Half the gloss paragraphs are *coherent*: every sentence means the same
  anchor, like a thesaurus entry. There the anchor is a hub that pulls all
  words of one polarity together, which the encoder learns first. But
  within such a paragraph the anchor can be copied from the neighbouring
  sentences, so alone they teach little about the word in front of the
  anchor. The other half are *dictionary* paragraphs whose sentences pick
  their polarity independently: copying fails there, and the encoder must
  bind each anchor to its own word. Only dictionary paragraphs: nothing
  learned in the time; only coherent ones: good features, but the
  word-level binding is learned late or not at all, depending on the seed.
* The anchor words "good" and "bad" appear only in glosses, never in reviews:
  otherwise a few labeled reviews would teach a scratch model the anchors and
  the task would not need the polar vocabulary.
* Reviews carry two or three polar mentions among neutral sentences (names,
  runtimes, who the reviewer watched with). A mention may be negated
  ("the plot was not X") with a word of the opposite polarity, so a
  classifier must compose "not" with the word rather than count words. This
  is the hard part: fine-tuned on 100 labels, the pretrained encoder gets
  ~99% of reviews without "not" right but ~65% of those with it, so
  ``REVIEW_NEGATION_RATE`` sets how far below 100% it ends.
* Polar words are drawn with a flat Zipf law (exponent ``ZIPF_EXPONENT``):
  text-like, but flat enough that 100 labeled reviews see about half of the
  polar vocabulary, most of it once or twice, while test reviews use all of
  it. Models trained from scratch on the labels stay around 55-60%; a
  pretrained one already knows the words.
* Templates are shared by both labels, so length or wording leaks nothing.

Everything is drawn from ``random.Random`` streams seeded from the arguments:
the lexicon (which pseudo-word is positive) and every text depend only on them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import datasets

ANCHORS: tuple[str, str] = ("bad", "good")  # index = label: 0 negative, 1 positive
LABEL_NAMES = ["negative", "positive"]
NUM_POLAR_PER_CLASS = 150
NUM_NAMES = 60
ZIPF_EXPONENT = 0.5
REVIEW_MENTIONS = (2, 3)  # polar sentences per review, drawn uniformly from this range
REVIEW_NEGATION_RATE = 0.15
GLOSS_NEGATION_RATE = 0.25
DICTIONARY_FRACTION = 0.5


def _words(text: str) -> list[str]:
    return text.split()


_ONSETS = _words("b d f g k l m n p r s t v z br dr gl gr kl pl pr sk sl st tr vr")
_VOWELS = _words("a e i o u ai ou ea")
_CODAS = ["", "", "n", "r", "l", "s", "k", "m", "x"]
_ASPECTS = _words(
    "movie film plot story acting cast script ending soundtrack music dialogue pacing direction "
    "lead villain finale opening editing effects photography"
)
_ADVERBS = ["", "", "really", "quite", "very", "rather", "truly", "pretty", "honestly"]
_COMPANIONS = ["my sister", "my brother", "a friend", "my parents", "the kids", "my partner", "my roommate"]
_DAYS = ["monday", "friday", "saturday", "sunday", "a rainy evening", "a long flight", "the weekend"]
_PLACES = ["the cinema", "home", "a festival", "the old theater", "a streaming service"]

# Review sentences: {p} polar word, {a} aspect, {d} optional adverb.
_POLAR_TEMPLATES = [
    "the {a} was {d} {p} .",
    "i found the {a} {d} {p} .",
    "what a {p} {a} .",
    "overall a {d} {p} {a} .",
    "the {a} felt {d} {p} to me .",
    "everyone said the {a} was {p} and i agree .",
    "a {p} {a} , from start to end .",
    "i would call the {a} {p} .",
]
# Negated review sentences: {p} has the polarity opposite to the review's label.
_NEGATED_TEMPLATES = [
    "the {a} was not {p} .",
    "i would not call the {a} {p} .",
    "the {a} is not {d} {p} at all .",
    "the {a} was not {p} , whatever they say .",
]
_NEUTRAL_TEMPLATES = [
    "i watched it with {c} on {day} .",
    "it was directed by {n} .",
    "{n} plays the lead and {n2} plays the villain .",
    "it runs about {m} minutes .",
    "we saw it at {pl} .",
    "the {a} was written by {n} .",
    "it came out in {y} .",
    "i had heard about it from {c} .",
    "the story is set in {n} .",
]
# Gloss sentences meaning the anchor {g}: {p} and {s} are words of that polarity.
# The plainest definition is listed three times: a fixed short pattern is the
# quickest for a small encoder to bind, and the others add variety.
_GLOSS_TEMPLATES = [
    "{p} means {g} .",
    "{p} means {g} .",
    "{p} means {g} .",
    "{p} is a {g} word .",
    "to call something {p} is to call it {g} .",
    "{p} and {s} mean the same thing .",
    "a {p} {a} is a {g} {a} .",
    "{p} is {g} .",
]
# Negated glosses, still meaning {g}: {p} has the opposite polarity.
_NEGATED_GLOSS_TEMPLATES = ["not {p} means {g} .", "not {p} means {g} .", "something not {p} is {g} ."]
_ALL_TEMPLATES = _POLAR_TEMPLATES + _NEGATED_TEMPLATES + _NEUTRAL_TEMPLATES
_ALL_TEMPLATES += _GLOSS_TEMPLATES + _NEGATED_GLOSS_TEMPLATES


@dataclass(frozen=True)
class Lexicon:
    """Polar pseudo-words (``polar[label]``) and neutral pseudo-word names."""

    polar: tuple[tuple[str, ...], tuple[str, ...]]
    names: tuple[str, ...]

    def polarity(self, word: str) -> int | None:
        """Label of a polar word, or None for any other word."""
        for label, words in enumerate(self.polar):
            if word in words:
                return label
        return None


def build_lexicon(seed: int = 0) -> Lexicon:
    """The seed's polar words and names; no pseudo-word collides with a real one."""
    rng = random.Random(f"lexicon-{seed}")
    phrases = _ALL_TEMPLATES + _ASPECTS + _ADVERBS + _COMPANIONS + _DAYS + _PLACES + list(ANCHORS)
    seen = {w for phrase in phrases for w in phrase.split()}
    words: list[str] = []
    while len(words) < 2 * NUM_POLAR_PER_CLASS + NUM_NAMES:
        syllables = rng.choice((2, 2, 3))
        w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))
        if len(w) >= 4 and w not in seen:
            seen.add(w)
            words.append(w)
    n = NUM_POLAR_PER_CLASS
    return Lexicon(polar=(tuple(words[:n]), tuple(words[n : 2 * n])), names=tuple(words[2 * n :]))


class _Sampler:
    """Draws documents for one lexicon from one random stream."""

    def __init__(self, lexicon: Lexicon, rng: random.Random) -> None:
        self.lex = lexicon
        self.rng = rng
        # Zipf weights by position in the lexicon, whose order is already random.
        self.weights = [1.0 / (r + 1) ** ZIPF_EXPONENT for r in range(len(lexicon.polar[0]))]

    def fill(self, template: str, **slots: str) -> str:
        r = self.rng
        n, n2 = r.sample(self.lex.names, 2)
        values = {
            "a": r.choice(_ASPECTS),
            "d": r.choice(_ADVERBS),
            "c": r.choice(_COMPANIONS),
            "day": r.choice(_DAYS),
            "pl": r.choice(_PLACES),
            "n": n,
            "n2": n2,
            "m": str(r.randrange(80, 180)),
            "y": str(r.randrange(1950, 2024)),
        }
        values.update(slots)
        return " ".join(template.format(**values).split())

    def review(self, label: int) -> str:
        r = self.rng
        sentences = []
        for _ in range(r.randint(*REVIEW_MENTIONS)):
            negated = r.random() < REVIEW_NEGATION_RATE
            polarity = 1 - label if negated else label
            word = r.choices(self.lex.polar[polarity], weights=self.weights)[0]
            sentences.append(self.fill(r.choice(_NEGATED_TEMPLATES if negated else _POLAR_TEMPLATES), p=word))
        sentences += [self.fill(r.choice(_NEUTRAL_TEMPLATES)) for _ in range(r.randint(1, 3))]
        r.shuffle(sentences)
        return " ".join(sentences)

    def gloss(self, coherent: bool) -> str:
        """A gloss paragraph; a ``coherent`` one means one anchor throughout."""
        r = self.rng
        label = r.randrange(2)
        sentences = []
        for _ in range(r.randint(4, 8)):
            if not coherent:
                label = r.randrange(2)
            # Uniform over words, not Zipf: rare words get definitions too.
            negated = r.random() < GLOSS_NEGATION_RATE
            word = r.choice(self.lex.polar[1 - label if negated else label])
            template = r.choice(_NEGATED_GLOSS_TEMPLATES if negated else _GLOSS_TEMPLATES)
            sentences.append(self.fill(template, p=word, s=r.choice(self.lex.polar[label]), g=ANCHORS[label]))
        return " ".join(sentences)

    def unlabeled(self, gloss_fraction: float) -> str:
        r = self.rng
        if r.random() >= gloss_fraction:
            return self.review(r.randrange(2))
        return self.gloss(coherent=r.random() >= DICTIONARY_FRACTION)

    def labeled(self, num: int) -> dict[str, list]:
        labels = [i % 2 for i in range(num)]  # balanced: counts differ by at most one
        self.rng.shuffle(labels)
        return {"text": [self.review(y) for y in labels], "label": labels}


def build_synthetic_corpus(
    seed: int = 0,
    num_unlabeled: int = 60000,
    num_train: int = 2000,
    num_validation: int = 500,
    num_test: int = 2000,
    gloss_fraction: float = 0.8,
) -> datasets.DatasetDict:
    """Splits "unlabeled" (text) and "train"/"validation"/"test" (text, label).

    ``gloss_fraction`` of the unlabeled documents are gloss paragraphs, the
    rest unlabeled reviews. Each split has its own random stream, so changing
    one split's size leaves the other splits unchanged.
    """
    lexicon = build_lexicon(seed)
    unl = _Sampler(lexicon, random.Random(f"unlabeled-{seed}"))
    texts = [unl.unlabeled(gloss_fraction) for _ in range(num_unlabeled)]
    text_only = datasets.Features({"text": datasets.Value("string")})
    labeled = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=LABEL_NAMES)}
    )
    splits = {"unlabeled": datasets.Dataset.from_dict({"text": texts}, features=text_only)}
    for name, num in (("train", num_train), ("validation", num_validation), ("test", num_test)):
        sampler = _Sampler(lexicon, random.Random(f"{name}-{seed}"))
        splits[name] = datasets.Dataset.from_dict(sampler.labeled(num), features=labeled)
    return datasets.DatasetDict(splits)


def probe_sentences(seed: int = 0, negated: bool = False) -> tuple[list[str], list[int]]:
    """One "X means [MASK] ." per polar word of the seed's lexicon, and the anchor index to fill.

    With ``negated`` the sentences are "not X means [MASK] ." and the answer
    flips. Each follows a neutral sentence because pretraining blocks start
    mid-document after [CLS]: a sentence right after [CLS] sits where the
    encoder rarely saw a sentence start, and its answers there are noisy. The
    neutral sentence holds no polar word or anchor to copy from. The mask is
    the literal "[MASK]"; callers substitute their tokenizer's mask token.
    """
    lexicon = build_lexicon(seed)
    texts, labels = [], []
    for label, words in enumerate(lexicon.polar):
        for w in words:
            texts.append(f"it runs about 100 minutes . {'not ' if negated else ''}{w} means [MASK] .")
            labels.append(1 - label if negated else label)
    return texts, labels
