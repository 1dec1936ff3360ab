"""A one-off measurement (issue 33), not library: does predicting a review's *other* words from the
pooled encoding of its opening make the laptop encoder's pretraining pay within the hour?

Why this objective. MLM, RTD and the encoder's causal twin all learn from a word's *neighbours*, and
neighbours do not tell "great" from "terrible" (they fill the same slots): after 11.7M tokens of MLM
the encoder's nearest words to "great" are "good, bad, big", and its mean-pooled features read no
better on the linear probe than an untrained encoder's. Which words share a *review*, on the other
hand, follows its verdict: "great" and "superb" appear together, "great" and "awful" less so. That
is the statistic paragraph vectors learned from IMDb (PV-DBOW, Le & Mikolov 2014: a review's vector
is trained to predict its words). Here the encoder reads the review's first 126 tokens, exactly the
window fine-tuning reads, mean-pools its last layer (as the classifier does), and the MLM head
(`head` -> tied `decoder`, so the classifier's `head` starts from it) predicts the bag of words of
the rest of the review (the second half, for reviews too short to have a rest), each distinct word
weighted by its inverse document frequency so that "the" does not dominate. Optionally the usual
15 % MLM loss on the same window is added (`--mlm`).

The loop is plain AdamW (the measurement comes before any objective kind in tunekit's loop): batch
16, lr 2e-3 with 5 % warm-up and cosine decay, weight decay 0.01, betas (0.9, 0.98), clipping at 1,
seed 42 unless `--seed`, like recipes/imdb_cpu/pretrain.yaml. It runs until it has spent BUDGET
training FLOPs, counted as tunekit counts them (`tunekit.training.flops.training_flops_per_token`:
the body on every real token, the vocabulary head on one row per review plus, with `--mlm`, 15 %
of the tokens). The
result is a stock `ModernBertForMaskedLM` saved as a study pretraining directory, so that
`scripts/study.py` fine-tunes it exactly like the MLM encoder.

It is the plain-loop pilot of what became `objective: dbow` (tunekit.training.document_words), kept
because its numbers and the library's differ (docs/results/imdb_cpu/dbow_pilot).

Run (the study's tokenizer first: any finished run of recipes/imdb_cpu/objectives.yaml has one):
    python tools/document_words_pilot.py TOKENIZER_DIR OUTPUT_DIR BUDGET [--mlm] [--seed N]
"""

import argparse
import gzip
import json
import math
import random
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from tunekit.data.document_words import split_document
from tunekit.data.tokenization import load_tokenizer
from tunekit.models.build import build_pretraining_model
from tunekit.study.stages import stage_args
from tunekit.training.flops import attention_lengths, training_flops_per_token

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "imdb"
BATCH, WINDOW = 16, 126  # WINDOW + [CLS] + [SEP] = fine-tuning's 128 tokens


def split_review(ids: list[int]) -> tuple[list[int], list[int]]:
    """The window the encoder reads and the words it predicts (the library's rule)."""
    return split_document(ids, WINDOW)


def word_targets(rests: list[list[int]], idf: torch.Tensor, special: set[int]) -> torch.Tensor:
    """One distribution per review over the vocabulary: its distinct words, weighted by idf."""
    targets = torch.zeros(len(rests), idf.numel())
    for row, rest in enumerate(rests):
        words = sorted(set(rest) - special)
        if words:
            targets[row, words] = idf[words]
    return targets / targets.sum(-1, keepdim=True).clamp_min(1e-12)


def mask_tokens(input_ids, attention_mask, tokenizer, special_ids, generator):
    """BERT's 15 % masking, 80/10/10, on real non-special tokens."""
    candidates = attention_mask.bool() & ~torch.isin(input_ids, special_ids)
    chosen = (torch.rand(input_ids.shape, generator=generator) < 0.15) & candidates
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    random_words = torch.randint(len(tokenizer), input_ids.shape, generator=generator)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = random_words[swap]
    return masked, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tokenizer_dir")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("budget", type=float, help="training FLOPs to spend")
    parser.add_argument("--mlm", action="store_true", help="add the 15 %% MLM loss on the window")
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    tokenizer = load_tokenizer(args.tokenizer_dir)
    recipe = ROOT / "recipes" / "imdb_cpu" / "pretrain.yaml"
    model_args, _, _ = stage_args(str(recipe), [], tokenizer_name_or_path=args.tokenizer_dir)
    model = build_pretraining_model(model_args, tokenizer)
    config = model.config

    texts = []
    for name in ("unsup.jsonl.gz", "train.jsonl.gz"):
        with gzip.open(DATA / name, "rt") as handle:
            texts += [json.loads(line)["text"] for line in handle]
    random.shuffle(texts)
    reviews = [ids for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] if len(ids) >= 8]
    frequency = Counter(word for ids in reviews for word in set(ids))
    idf = torch.zeros(config.vocab_size)
    for word, count in frequency.items():
        idf[word] = math.log(len(reviews) / count)
    special = set(tokenizer.all_special_ids)
    special_ids = torch.tensor(sorted(special))

    embedding = model.model.embeddings.tok_embeddings.weight.numel()
    vocabulary_head = model.decoder.weight.numel()
    body = sum(p.numel() for p in model.parameters()) - embedding - model.decoder.bias.numel()
    spans = attention_lengths(config, config.num_hidden_layers, WINDOW + 2)

    def flops_per_token(real_tokens_per_review: float) -> float:
        head_fraction = 1 / real_tokens_per_review + (0.15 if args.mlm else 0.0)
        return training_flops_per_token(
            body, config.num_hidden_layers, config.hidden_size, WINDOW + 2,
            head_params=vocabulary_head, head_fraction=head_fraction, attention_spans=spans,
        )  # fmt: skip

    mean_tokens = sum(len(split_review(r)[0]) + 2 for r in reviews[:2000]) / 2000
    steps = int(args.budget / (flops_per_token(mean_tokens) * mean_tokens * BATCH))
    if steps * BATCH > len(reviews):
        raise SystemExit(f"{steps} steps need {steps * BATCH} reviews; there are {len(reviews)}")
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=args.learning_rate, weight_decay=0.01, betas=(0.9, 0.98)
    )
    warmup = max(1, int(0.05 * steps))

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    model.train()
    started, flops, tokens = time.time(), 0.0, 0
    for step in range(steps):
        windows, rests = zip(
            *(split_review(r) for r in reviews[step * BATCH : (step + 1) * BATCH]), strict=True
        )
        encoded = tokenizer.pad(
            {"input_ids": [[tokenizer.cls_token_id, *w, tokenizer.sep_token_id] for w in windows]},
            return_tensors="pt",
        )
        input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
        labels = None
        if args.mlm:
            input_ids, labels = mask_tokens(input_ids, attention_mask, tokenizer, special_ids, generator)
        hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1)
        log_probs = F.log_softmax(model.decoder(model.head(pooled)), dim=-1)
        document_loss = -(word_targets(list(rests), idf, special) * log_probs).sum(-1).mean()
        loss = document_loss
        mlm_loss = torch.zeros(())
        if labels is not None:
            picked = labels != -100
            mlm_logits = model.decoder(model.head(hidden[picked]))
            mlm_loss = F.cross_entropy(mlm_logits, labels[picked])
            loss = loss + mlm_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        real = int(attention_mask.sum())
        tokens += real
        flops += flops_per_token(real / BATCH) * real
        if step % 100 == 0 or step == steps - 1:
            speed = tokens / (time.time() - started)
            print(
                f"step {step}/{steps} document loss {document_loss.item():.3f} "
                f"mlm loss {mlm_loss.item():.3f} {speed:.0f} tokens/s",
                flush=True,
            )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    results = {
        "objective": "document words"
        + (" + MLM-15" if args.mlm else "")
        + " (tools/document_words_pilot.py)",
        "train_steps": steps,
        "tokens_seen": tokens,
        "train_flops": flops,
        "document_loss": document_loss.item(),
        "mlm_loss": mlm_loss.item(),
        "wall_time": round(time.time() - started, 1),
    }
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
