"""Fit-AD Studio: turns a shop owner's photo into upload-ready ads, on the owner's own PC.

Importing this package does no work: no model loads, no network, no torch import.
"""

__version__ = "0.1.0"
