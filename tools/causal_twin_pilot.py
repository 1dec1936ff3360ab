"""A one-off measurement (issue 33), not library: does a causal-LM-trained twin of the laptop encoder
fine-tune better than MLM when read bidirectionally?

The question it answers: the LSTM's language model pays within the laptop hour, and a Llama decoder
trained the same way reads 65 % on the study's mean-pooled linear probe after 1.34M tokens (MLM:
58.6 % after 5.9M), yet fine-tuned through its last token it loses to scratch. This pretrains
`ModernBertDecoderForCausalLM` with exactly the encoder's config (recipes/imdb_cpu/pretrain.yaml:
2 x 128, the same layers, rotary bases and windows) on packed IMDb reviews, then copies its weights
into the stock ModernBERT encoder (q/k/v fused into Wqkv in ModernBERT's q, k, v order, lm_head ->
head: the two classes have otherwise the same parameters) and saves it as a study pretraining
directory, so that `scripts/study.py` fine-tunes it with mean pooling like the MLM encoder.

It uses a plain AdamW loop (the loop of tunekit would need a new objective kind, not worth building
before the measurement): batch 16 x 128, lr 2e-3 with 5 % warm-up and cosine decay, weight decay
0.01, clipping at 1, betas (0.9, 0.98), seed 42, like the MLM recipe.

Run (the study's tokenizer first: any finished run of recipes/imdb_cpu/objectives.yaml has one):
    python tools/causal_twin_pilot.py TOKENIZER_DIR STUDY_DIR/pretrain/transformer/flops_13200000000000 656
then the study on STUDY_DIR with arms transformer_pretrained transformer_scratch and
--pretrain_budgets 13200000000000 (docs/results/imdb_cpu/causal_lm_pilot/ has the exact commands).
"""

import gzip
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
from transformers import ModernBertDecoderConfig, ModernBertDecoderForCausalLM

from tunekit.data.tokenization import load_tokenizer
from tunekit.models.build import build_pretraining_model
from tunekit.study.stages import stage_args

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "imdb"
BATCH, BLOCK = 16, 128


def encoder_state_from_decoder(decoder_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The decoder's weights under the encoder's names: ModernBERT fuses q, k, v into one Wqkv and
    splits it in that order (`qkv.view(..., 3, heads, head_dim).unbind`)."""
    state = {}
    for key, value in decoder_state.items():
        if ".attn.q_proj." in key:
            prefix = key.split(".attn.q_proj.")[0]
            parts = [decoder_state[f"{prefix}.attn.{name}_proj.weight"] for name in ("q", "k", "v")]
            state[f"{prefix}.attn.Wqkv.weight"] = torch.cat(parts)
        elif ".attn.k_proj." not in key and ".attn.v_proj." not in key:
            state[key.replace("lm_head.", "head.")] = value
    return state


def packed_blocks(tokenizer, steps: int) -> torch.Tensor:
    texts = []
    for name in ("unsup.jsonl.gz", "train.jsonl.gz"):
        with gzip.open(DATA / name, "rt") as handle:
            texts += [json.loads(line)["text"] for line in handle]
    random.shuffle(texts)
    ids: list[int] = []
    for start in range(0, len(texts), 2000):
        for tokens in tokenizer(texts[start : start + 2000], add_special_tokens=False)["input_ids"]:
            ids += [tokenizer.cls_token_id, *tokens, tokenizer.sep_token_id]
        if len(ids) > (steps * BATCH + 1) * BLOCK:
            break
    return torch.tensor(ids[: len(ids) // BLOCK * BLOCK]).view(-1, BLOCK)


def main(tokenizer_dir: str, output_dir: Path, steps: int, learning_rate: float = 2e-3) -> None:
    torch.manual_seed(42)
    random.seed(42)
    tokenizer = load_tokenizer(tokenizer_dir)
    recipe = ROOT / "recipes" / "imdb_cpu" / "pretrain.yaml"
    model_args, _, _ = stage_args(str(recipe), [], tokenizer_name_or_path=tokenizer_dir)
    encoder = build_pretraining_model(model_args, tokenizer)
    shared = ModernBertDecoderConfig().to_dict().keys() - {
        "architectures",
        "model_type",
        "transformers_version",
    }
    config = ModernBertDecoderConfig(**{k: v for k, v in encoder.config.to_dict().items() if k in shared})
    config.sliding_window = encoder.config.local_attention // 2
    decoder = ModernBertDecoderForCausalLM(config)
    blocks = packed_blocks(tokenizer, steps)
    optimizer = torch.optim.AdamW(
        decoder.parameters(), lr=learning_rate, weight_decay=0.01, betas=(0.9, 0.98)
    )
    warmup = max(1, int(0.05 * steps))

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    decoder.train()
    started = time.time()
    for step in range(steps):
        batch = blocks[step * BATCH : (step + 1) * BATCH]
        loss = decoder(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == steps - 1:
            rate_now = (step + 1) * BATCH * BLOCK / (time.time() - started)
            print(f"step {step} loss {loss.item():.3f} {rate_now:.0f} tokens/s", flush=True)
    missing, unexpected = encoder.load_state_dict(
        encoder_state_from_decoder(decoder.state_dict()), strict=False
    )
    if missing or unexpected:
        raise SystemExit(f"the decoder's weights do not fill the encoder: {missing} {unexpected}")
    output_dir.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    parameters = sum(p.numel() for p in decoder.parameters())
    results = {
        "objective": "causal LM, weights copied into the encoder (tools/causal_twin_pilot.py)",
        "tokens_seen": steps * BATCH * BLOCK,
        "train_flops": 6 * parameters * steps * BATCH * BLOCK,  # 6N per token; attention left out
        "train_loss": loss.item(),
        "wall_time": round(time.time() - started, 1),
    }
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), *(float(a) for a in sys.argv[4:5]))
