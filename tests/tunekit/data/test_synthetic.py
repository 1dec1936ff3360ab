from collections import Counter

from tunekit.data.synthetic import ANCHORS, build_lexicon, build_synthetic_corpus, probe_sentences


def small(seed: int = 0):
    return build_synthetic_corpus(seed=seed, num_unlabeled=300, num_train=60, num_validation=20, num_test=40)


def test_corpus_is_deterministic_per_seed_and_has_the_splits():
    corpus = small()
    assert {name: len(split) for name, split in corpus.items()} == {
        "unlabeled": 300,
        "train": 60,
        "validation": 20,
        "test": 40,
    }
    assert corpus["unlabeled"].column_names == ["text"]
    assert corpus["train"].features["label"].names == ["negative", "positive"]
    assert small()["train"]["text"] == corpus["train"]["text"]
    assert small(seed=1)["train"]["text"] != corpus["train"]["text"]


def test_labels_are_balanced_and_reviews_never_use_the_anchor_words():
    corpus = small()
    assert Counter(corpus["train"]["label"]) == {0: 30, 1: 30}
    for split in ("train", "validation", "test"):
        for text in corpus[split]["text"]:
            assert not set(text.split()) & set(ANCHORS), text


def test_polarity_is_carried_by_pseudo_words_explained_in_unlabeled_text():
    lexicon = build_lexicon(0)
    positive, negative = lexicon.polar[1], lexicon.polar[0]
    assert len(positive) == len(negative) and not set(positive) & set(negative)
    unlabeled = " ".join(small()["unlabeled"]["text"]).split()
    assert "means" in unlabeled and {"good", "bad"} <= set(unlabeled)
    texts, labels = probe_sentences(0)
    assert len(texts) == 2 * len(positive) and all(t.count("[MASK]") == 1 for t in texts)
    negated, flipped = probe_sentences(0, negated=True)
    assert flipped == [1 - label for label in labels] and all(" not " in t for t in negated)
