"""What the console shows: the notes every run would repeat (a tied decoder at each checkpoint) dropped."""

import logging

from tunekit.cli import setup_logging


def test_the_tied_decoder_note_at_each_checkpoint_is_dropped(caplog):
    from accelerate import PartialState
    from accelerate.utils.other import logger

    setup_logging()
    PartialState()
    caplog.set_level(logging.WARNING)
    logger.warning("Removed shared tensor {'decoder.weight'} while saving.")
    logger.warning("something else")
    assert "Removed shared tensor" not in caplog.text and "something else" in caplog.text
