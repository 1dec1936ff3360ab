"""The one exception type users see.

Scripts catch it, print its one-line message without a traceback and exit non-zero, so every
message must name the field or file at fault and say what would be valid.
"""


class TunekitError(Exception):
    """A user-facing error: bad recipe, bad data, bad path. Its message is one line."""
