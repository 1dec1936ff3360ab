"""The pilot's targets and masks: each review's distinct rest words, weighted by idf, as one
distribution; BERT's 15 % masking on real, ordinary tokens only."""

import torch

from tools.document_words_pilot import WINDOW, mask_tokens, split_review, word_targets


def test_targets_are_the_distinct_rest_words_weighted_by_idf():
    idf = torch.zeros(10)
    idf[3], idf[4], idf[5] = 1.0, 3.0, 2.0
    targets = word_targets([[3, 4, 4, 0], [5], [0]], idf, special={0})
    torch.testing.assert_close(targets[0, [3, 4]], torch.tensor([0.25, 0.75]))
    assert targets[0].sum() == 1.0 and targets[1, 5] == 1.0
    assert targets[2].sum() == 0.0  # nothing but special tokens: no target


def test_the_window_is_the_opening_of_a_long_review():
    ids = list(range(WINDOW + 40))
    assert split_review(ids) == (ids[:WINDOW], ids[WINDOW:])


class _Tokenizer:
    mask_token_id = 4

    def __len__(self) -> int:
        return 50


def test_masks_fall_on_real_ordinary_tokens_only():
    input_ids = torch.tensor([[2] + list(range(10, 40)) + [3, 0, 0]])
    attention_mask = (input_ids != 0).long()
    generator = torch.Generator().manual_seed(0)
    masked, labels = mask_tokens(input_ids, attention_mask, _Tokenizer(), torch.tensor([0, 2, 3]), generator)
    chosen = labels != -100
    assert chosen.any() and not chosen[0, [0, 31, 32, 33]].any()
    assert torch.equal(labels[chosen], input_ids[chosen])
    assert torch.equal(masked[~chosen], input_ids[~chosen])
