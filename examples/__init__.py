"""Runnable examples of cronkeeper; a package only so that tests/examples can import them."""
