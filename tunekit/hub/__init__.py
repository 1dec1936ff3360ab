"""Sharing a finished run: its model card (`card`) and the push to the Hugging Face Hub (`push`)."""
