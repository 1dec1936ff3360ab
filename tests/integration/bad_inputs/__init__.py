"""The catalogue of bad inputs (test_catalogue.py), its cases grouped by what they spoil."""
