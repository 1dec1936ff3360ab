"""Kept only because saved artefacts name this path: every LSTM language model's model card (written
by `tunekit.hub.card`, pushed to the Hub) tells users `from tunekit.lstm_lm import
LSTMForLanguageModeling`. The model lives in `tunekit.models.lstm_lm`."""

from tunekit.models.lstm_lm import LSTMForLanguageModeling

__all__ = ["LSTMForLanguageModeling"]
