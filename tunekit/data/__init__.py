"""Text in, batches out: sources (Hub | files | synthetic), splits, tokenizers, packing, collators,
MLM masking."""
