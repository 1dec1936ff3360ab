"""MLM masking: which tokens of a packed block are masked, replaced or randomized, seeded per block."""

import hashlib

import torch
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from tunekit.data.tokenization import BLOCK_ID
from tunekit.models.mlm_head import MASKED_POSITIONS, masked_batch_keys


class BlockSeededMLMCollator(DataCollatorForLanguageModeling):
    """transformers' MLM masking whose mask for a block depends only on (seed, epoch, block id).

    The stock collator draws from one global RNG, so masks change with batch size, process
    count, and accelerate's one-batch-ahead prefetch after a resume. Seeding each block on its
    own makes a run with gradient accumulation, on several processes, or resumed from a
    checkpoint see exactly the masks of a plain uninterrupted run, while every epoch still
    gets fresh masks (RoBERTa's dynamic masking). The loop calls `set_epoch`.

    Each block's generator makes the stock `torch_mask_tokens` draws, in its order and shapes, so
    the masks are the stock collator's for a one-block batch; everything else runs once per batch
    on the stacked blocks. Calling the stock collator once per block, as this class first did,
    took 98 ms of host time for 128 blocks of 256 tokens (17 ms now; the stock collator on the
    whole batch, as the Trainer uses it, 43 ms; one core of the development CPU), the likeliest
    cause of tunekit's 0.46x the Trainer's tokens/s on an H200, where the host is the bottleneck.
    """

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def block_generator(self, block_id: int) -> torch.Generator:
        key = repr((self.seed, self.epoch, block_id)).encode()
        seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)
        return torch.Generator().manual_seed(seed)

    def torch_call(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        # Packed blocks all have the same length, so they stack without padding, and no attention
        # mask is needed (ModernBERT keeps SDPA's flash path, which any mask, even all ones, costs).
        inputs = torch.tensor([example["input_ids"] for example in examples], dtype=torch.long)
        labels = inputs.clone()
        special = torch.isin(inputs, torch.tensor(self.tokenizer.all_special_ids, dtype=torch.long))
        probability = torch.full(inputs.shape, self.mlm_probability).masked_fill_(special, 0.0)
        keep_random = not (self.mask_replace_prob == 1 or self.random_replace_prob == 0)
        row_shape = (1, inputs.shape[1])
        replace_probability = torch.full(row_shape, self.mask_replace_prob)
        if keep_random:  # the stock scaling: the share of the not-[MASK]ed that turn random
            scaled = self.random_replace_prob / (1 - self.mask_replace_prob)
            random_probability = torch.full(row_shape, scaled)
        vocabulary = len(self.tokenizer)
        draws: list[list[torch.Tensor]] = [[], [], [], []]  # masked, replaced, randomized, random words
        for row, example in enumerate(examples):
            generator = self.block_generator(example[BLOCK_ID])
            draws[0].append(torch.bernoulli(probability[row : row + 1], generator=generator))
            draws[1].append(torch.bernoulli(replace_probability, generator=generator))
            if keep_random:
                draws[2].append(torch.bernoulli(random_probability, generator=generator))
                draws[3].append(torch.randint(vocabulary, row_shape, generator=generator))
        masked = torch.cat(draws[0]).bool()
        replaced = torch.cat(draws[1]).bool() & masked
        labels[~masked] = -100
        inputs[replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)
        if keep_random:
            randomized = torch.cat(draws[2]).bool() & masked & ~replaced
            inputs[randomized] = torch.cat(draws[3])[randomized]
        batch = {"input_ids": inputs, "labels": labels}
        # Computed here, on the host, so the masked-only MLM head (and the last layer) never make
        # the host wait for the device to learn how many tokens are masked.
        batch.update(masked_batch_keys(labels))
        return batch


def mlm_collator(
    tokenizer: PreTrainedTokenizerBase, mlm_probability: float, seed: int
) -> BlockSeededMLMCollator:
    return BlockSeededMLMCollator(tokenizer=tokenizer, mlm_probability=mlm_probability, seed=seed)


# Replaced-token detection (tunekit.training.rtd): one uniform in [0, 1) per masked position, in their order.
REPLACEMENT_DRAWS = "replacement_draws"


class ReplacedTokenCollator(BlockSeededMLMCollator):
    """The seeded MLM batch plus one uniform draw per masked position, made by the block's own
    generator (seeded by seed, epoch and block id, on a stream apart from the masks') so that the
    generator's samples do not depend on batching, processes or resumes."""

    def draws_generator(self, block_id: int) -> torch.Generator:
        key = repr(("replacements", self.seed, self.epoch, block_id)).encode()
        seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)
        return torch.Generator().manual_seed(seed)

    def torch_call(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = super().torch_call(examples)
        length = batch["input_ids"].shape[1]
        draws = torch.cat(
            [torch.rand(length, generator=self.draws_generator(example[BLOCK_ID])) for example in examples]
        )
        batch[REPLACEMENT_DRAWS] = draws.index_select(0, batch[MASKED_POSITIONS])
        return batch
