"""Generators behind small protocols. Nothing here imports torch at import time."""
