"""Programs beside the library, not part of it: the prepared GPU session and one-off measurements.

The scripts in scripts/ that run them put the repository root on `sys.path`; tunekit never imports them.
"""
