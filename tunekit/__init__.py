"""tunekit: pretrain a small transformer, fine-tune it, and measure what pretraining buys over an LSTM."""

from transformers import AutoConfig, AutoModelForSequenceClassification

from tunekit.errors import TunekitError
from tunekit.models.lstm import LSTMConfig, LSTMForSequenceClassification

__version__ = "0.1.0"

# Registering on import is what lets `AutoModelForSequenceClassification.from_pretrained`
# rebuild a saved LSTM: its config.json names model_type "tunekit-lstm".
AutoConfig.register(LSTMConfig.model_type, LSTMConfig, exist_ok=True)
AutoModelForSequenceClassification.register(LSTMConfig, LSTMForSequenceClassification, exist_ok=True)

__all__ = ["LSTMConfig", "LSTMForSequenceClassification", "TunekitError", "__version__"]
