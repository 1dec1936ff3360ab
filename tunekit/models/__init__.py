"""Models from a recipe: stock transformers encoders and decoders, the LSTM, heads, attention plumbing,
LoRA."""
