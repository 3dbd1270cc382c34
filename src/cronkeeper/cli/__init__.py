"""The ``cronkeeper`` command."""
