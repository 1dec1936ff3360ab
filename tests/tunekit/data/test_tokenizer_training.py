import pytest
from accelerate import Accelerator
from datasets import Dataset

from tunekit.config import DataArguments, ModelArguments, parse_recipe
from tunekit.data.tokenizer_training import train_byte_level_bpe, train_wordpiece, training_sample
from tunekit.errors import TunekitError
from tunekit.training.tasks import get_tokenizer

# A corpus sorted by source, as files often are: 40 reviews of one kind, then 40 of another.
CORPUS = [f"the plot of film {i} was great fun" for i in range(40)] + [
    f"an awful sequel number {i} bored everyone" for i in range(40)
]


def test_small_corpora_and_zero_train_on_everything():
    total = sum(map(len, CORPUS))
    assert training_sample(CORPUS, total) is CORPUS
    assert training_sample(CORPUS, 0) is CORPUS
    dataset = Dataset.from_dict({"text": CORPUS})
    assert training_sample(dataset, total + 1, "text") is dataset


def test_sample_is_an_even_spread_of_about_the_budget():
    total = sum(map(len, CORPUS))
    sample = training_sample(CORPUS, total // 4)
    assert len(sample) == 20
    assert abs(sum(map(len, sample)) - total / 4) <= max(map(len, CORPUS))
    # Both halves of the sorted corpus are represented equally, not just its head.
    assert sum("great" in text for text in sample) == sum("awful" in text for text in sample) == 10
    dataset_sample = training_sample(Dataset.from_dict({"text": CORPUS}), total // 4, "text")
    assert dataset_sample["text"] == sample


def _corpus_with_a_word_outside_the_sample() -> tuple[list[str], int]:
    texts = [f"{'common' if i % 4 else 'rare'} words in review {i}" for i in range(400)]
    budget = sum(map(len, texts)) // 4
    kept = set(training_sample(texts, budget))
    # An unsampled text, repeated, holds a frequent word the sample never shows: "zyzzyvaж".
    outside = next(index for index, text in enumerate(texts) if text not in kept)
    texts[outside] = " ".join(["zyzzyvaж"] * 40)
    assert texts[outside] not in training_sample(texts, budget)
    return texts, budget


def test_the_trainer_sees_only_the_sample_and_the_whole_alphabet():
    texts, budget = _corpus_with_a_word_outside_the_sample()
    everything = train_wordpiece(texts, vocab_size=120, model_max_length=64, training_chars=0)
    sampled = train_wordpiece(texts, vocab_size=120, model_max_length=64, training_chars=budget)
    assert "zyzzyvaж" in everything.get_vocab()
    assert "zyzzyvaж" not in sampled.get_vocab()
    # "ж" occurs only outside the sample, yet it is in the alphabet, so no word becomes [UNK].
    assert sampled.unk_token_id not in sampled("zyzzyvaж жazy")["input_ids"]
    bpe = train_byte_level_bpe(texts, vocab_size=300, model_max_length=64, training_chars=budget)
    assert "zyzzyva" not in "".join(bpe.get_vocab())


def test_runs_train_their_tokenizer_on_the_recipes_budget(tmp_path):
    texts, budget = _corpus_with_a_word_outside_the_sample()
    dataset = Dataset.from_dict({"text": texts})
    vocabularies = {}
    for chars in (0, budget):
        model_args = ModelArguments(vocab_size=120, tokenizer_training_chars=chars)
        tokenizer = get_tokenizer(
            model_args, DataArguments(), dataset, tmp_path / str(chars), Accelerator(cpu=True)
        )
        vocabularies[chars] = tokenizer.get_vocab()
    assert "zyzzyvaж" in vocabularies[0] and "zyzzyvaж" not in vocabularies[budget]


def test_a_negative_budget_is_one_line_naming_the_field():
    with pytest.raises(TunekitError, match="tokenizer_training_chars") as info:
        parse_recipe(["--tokenizer_training_chars", "-5"])
    assert "\n" not in str(info.value)
