"""Deterministic synthetic sentiment corpus on which unsupervised pretraining helps.

Design, and why:

* Sentiment lives in many invented *polar words* (pseudo-words such as
  ``gravolen``), half positive and half negative. Their spelling is random, so
  nothing in a word's form tells its polarity: it can only be learned from
  context, either from labels or from the unlabeled text.
* The unlabeled split mixes movie reviews (same generator as the labeled data,
  labels dropped) with short *gloss* paragraphs: "gravolen means good",
  "gravolen is like tesmirak", "not gravolen means bad", "gravolen is the
  opposite of pludak". These are the local, learnable evidence of meaning that
  real text has (definitions, synonyms, contrasts). A small encoder trained
  with masked-LM for a few minutes on two CPU cores learns them; polarity shown
  only by which words share a review is too weak a signal at that scale.
* The anchor words "good" and "bad" appear only in glosses, never in reviews:
  otherwise a few labeled reviews would teach a scratch model the anchors and
  the task would not need the polar vocabulary.
* Reviews carry one or two polar mentions among neutral sentences (names,
  runtimes, who the reviewer watched with). A mention may be negated
  ("the plot was not X") with a word of the opposite polarity, so a classifier
  must compose "not" with the word rather than count words.
* Polar words are drawn with a flat Zipf law (exponent ``ZIPF_EXPONENT``):
  text-like, but flat enough that ~100-200 labeled reviews see only a minority
  of the polar vocabulary while test reviews use all of it. A model trained
  from scratch on the labels is therefore near chance on most test reviews;
  a pretrained one already knows the words.
* Templates are shared by both labels, so length or wording leaks nothing.

Everything is drawn from ``random.Random(seed)``: the lexicon (which pseudo-word
is positive) and every text depend only on the arguments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import datasets

ANCHORS: tuple[str, str] = ("bad", "good")  # index = label: 0 negative, 1 positive
ZIPF_EXPONENT = 0.5
NUM_POLAR_PER_CLASS = 150
NUM_NAMES = 60
NEGATED_GLOSS_RATE = 0.2

_ONSETS = [
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "gl",
    "gr",
    "kl",
    "pl",
    "pr",
    "sk",
    "sl",
    "st",
    "tr",
    "vr",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea"]
_CODAS = ["", "", "n", "r", "l", "s", "k", "m", "x"]

_ASPECTS = [
    "movie",
    "film",
    "plot",
    "story",
    "acting",
    "cast",
    "script",
    "ending",
    "soundtrack",
    "music",
    "dialogue",
    "pacing",
    "direction",
    "camera work",
    "lead",
    "villain",
    "finale",
    "opening",
    "editing",
    "effects",
]
_ADVERBS = ["", "", "really", "quite", "very", "rather", "truly", "pretty", "honestly"]
_COMPANIONS = [
    "my sister",
    "my brother",
    "a friend",
    "my parents",
    "the kids",
    "my partner",
    "some coworkers",
    "my roommate",
]
_DAYS = [
    "monday",
    "tuesday",
    "friday",
    "saturday",
    "sunday",
    "a rainy evening",
    "a long flight",
    "the weekend",
]
_PLACES = ["the cinema", "home", "a festival", "the old theater", "a streaming service"]

# Sentences carrying one polar word {p}; {a} aspect, {d} optional adverb.
_POLAR_TEMPLATES = [
    "the {a} was {d} {p} .",
    "i found the {a} {d} {p} .",
    "what a {p} {a} .",
    "overall a {d} {p} {a} .",
    "the {a} felt {d} {p} to me .",
    "everyone said the {a} was {p} and i agree .",
    "a {p} {a} , from start to end .",
    "honestly the {a} is {p} .",
    "i would call the {a} {p} .",
]
# Negated sentences: {p} has the polarity opposite to the review's label.
_NEGATED_TEMPLATES = [
    "the {a} was not {p} .",
    "i would not call the {a} {p} .",
    "the {a} is not {d} {p} at all .",
    "nobody could say the {a} was {p} .",
    "the {a} never felt {p} .",
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
# Gloss sentences, all meaning the anchor {g}: {p} a polar word of that
# polarity, {s} another one.
_GLOSS_TEMPLATES = [
    "{p} means {g} .", "{p} is a {g} word .", "to call something {p} is to call it {g} .",
    "{p} is like {s} , and both are {g} .", "{p} and {s} mean the same thing .",
    "a {p} {a} is a {g} {a} .", "if a film is {p} , it is {g} .", "{p} is {g} .",
]
# Negated glosses: {p} has the polarity opposite to {g}.
_NEGATED_GLOSS_TEMPLATES = [
    "not {p} means {g} .", "a film that is not {p} is {g} .", "something not {p} is {g} .",
]


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


def _pseudo_word(rng: random.Random) -> str:
    return "".join(
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.choice((2, 2, 3)))
    )


def build_lexicon(seed: int = 0) -> Lexicon:
    """The seed's polar words and names; no pseudo-word collides with a real one."""
    rng = random.Random(f"lexicon-{seed}")
    reserved = {
        w
        for group in (
            _ASPECTS,
            _ADVERBS,
            _COMPANIONS,
            _DAYS,
            _PLACES,
            _POLAR_TEMPLATES,
            _NEGATED_TEMPLATES,
            _NEUTRAL_TEMPLATES,
            _GLOSS_TEMPLATES,
            ANCHORS,
        )
        for phrase in group
        for w in phrase.split()
    }
    words: list[str] = []
    seen = set(reserved)
    while len(words) < 2 * NUM_POLAR_PER_CLASS + NUM_NAMES:
        w = _pseudo_word(rng)
        if len(w) >= 4 and w not in seen:
            seen.add(w)
            words.append(w)
    n = NUM_POLAR_PER_CLASS
    return Lexicon(polar=(tuple(words[:n]), tuple(words[n : 2 * n])), names=tuple(words[2 * n :]))


class _Sampler:
    """Draws sentences for one lexicon with one random stream."""

    def __init__(self, lexicon: Lexicon, rng: random.Random) -> None:
        self.lex = lexicon
        self.rng = rng
        # Zipf weights over each class's words, in lexicon order (order is random).
        self.weights = [1.0 / (r + 1) ** ZIPF_EXPONENT for r in range(NUM_POLAR_PER_CLASS)]

    def polar(self, label: int) -> str:
        return self.rng.choices(self.lex.polar[label], weights=self.weights)[0]

    def fill(self, template: str, **slots: str) -> str:
        r = self.rng
        n, n2 = r.sample(self.lex.names, 2)
        values = dict(
            a=r.choice(_ASPECTS),
            d=r.choice(_ADVERBS),
            c=r.choice(_COMPANIONS),
            day=r.choice(_DAYS),
            pl=r.choice(_PLACES),
            n=n,
            n2=n2,
            m=str(r.randrange(80, 180)),
            y=str(r.randrange(1950, 2024)),
        )
        values.update(slots)
        return " ".join(template.format(**values).split())

    def review(self, label: int) -> str:
        r = self.rng
        sentences = []
        for _ in range(r.choice((1, 1, 2))):
            if r.random() < 0.3:
                sentences.append(self.fill(r.choice(_NEGATED_TEMPLATES), p=self.polar(1 - label)))
            else:
                sentences.append(self.fill(r.choice(_POLAR_TEMPLATES), p=self.polar(label)))
        sentences += [self.fill(r.choice(_NEUTRAL_TEMPLATES)) for _ in range(r.randint(1, 3))]
        r.shuffle(sentences)
        return " ".join(sentences)

    def gloss(self) -> str:
        """A thesaurus-like paragraph: every sentence means the same anchor.

        One meaning per paragraph gives a coherent bag of words (like a review
        that is positive throughout), which a small encoder picks up early;
        the exact local relations ("X means", "not X") then sharpen it.
        """
        r = self.rng
        label = r.randrange(2)
        sentences = []
        for _ in range(r.randint(3, 6)):
            # Uniform over words, not Zipf: rare words get definitions too.
            if r.random() < NEGATED_GLOSS_RATE:
                p = r.choice(self.lex.polar[1 - label])
                template = r.choice(_NEGATED_GLOSS_TEMPLATES)
            else:
                p = r.choice(self.lex.polar[label])
                template = r.choice(_GLOSS_TEMPLATES)
            sentences.append(self.fill(template, p=p, g=ANCHORS[label],
                                       s=r.choice(self.lex.polar[label])))
        return " ".join(sentences)


def _labeled(sampler: _Sampler, num: int) -> dict[str, list]:
    labels = [i % 2 for i in range(num)]  # exactly balanced (up to one for odd num)
    sampler.rng.shuffle(labels)
    return {"text": [sampler.review(y) for y in labels], "label": labels}


def build_synthetic_corpus(
    seed: int = 0,
    num_unlabeled: int = 60000,
    num_train: int = 100,
    num_validation: int = 500,
    num_test: int = 2000,
    gloss_fraction: float = 0.5,
) -> datasets.DatasetDict:
    """Splits "unlabeled" (text) and "train"/"validation"/"test" (text, label).

    ``gloss_fraction`` of the unlabeled documents are gloss paragraphs, the rest
    unlabeled reviews.
    """
    lexicon = build_lexicon(seed)
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )
    splits: dict[str, datasets.Dataset] = {}
    # One stream per split, so that changing one split's size leaves the others alone.
    unl = _Sampler(lexicon, random.Random(f"unlabeled-{seed}"))
    texts = [
        unl.gloss() if unl.rng.random() < gloss_fraction else unl.review(unl.rng.randrange(2))
        for _ in range(num_unlabeled)
    ]
    splits["unlabeled"] = datasets.Dataset.from_dict(
        {"text": texts}, features=datasets.Features({"text": datasets.Value("string")})
    )
    for name, num in (("train", num_train), ("validation", num_validation), ("test", num_test)):
        sampler = _Sampler(lexicon, random.Random(f"{name}-{seed}"))
        splits[name] = datasets.Dataset.from_dict(_labeled(sampler, num), features=features)
    return datasets.DatasetDict(splits)


def probe_sentences(seed: int = 0, negated: bool = False) -> tuple[list[str], list[int]]:
    """One "X means [MASK] ." sentence per polar word and its label (the anchor index).

    With ``negated`` the sentences are "not X means [MASK] ." and labels flip.
    The mask is written as the literal "[MASK]"; callers substitute the
    tokenizer's mask token if it differs.
    """
    lexicon = build_lexicon(seed)
    texts, labels = [], []
    for label, words in enumerate(lexicon.polar):
        for w in words:
            texts.append(f"{'not ' if negated else ''}{w} means [MASK] .")
            labels.append(1 - label if negated else label)
    return texts, labels
