"""Hands (PLACEHOLDER written by issue 24; issue 18a owns this module and its real version wins
at merge). The contract: `find_hands(image RGB array, models_dir) -> list[Hand]`.

This stand-in finds no hands when the MediaPipe models (`models/mediapipe/*.tflite`) are absent,
which is always the case until 18a's fetcher exists; the detail pass then says that hands were
not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Hand:
    box: tuple[int, int, int, int]                 # x0, y0, x1, y1 in image pixels
    points: np.ndarray = field(default_factory=lambda: np.zeros((21, 2)))  # (21, 2) float image px
    score: float = 0.0
    handedness: str = ""


def models_present(models_dir: Path | str) -> bool:
    folder = Path(models_dir) / "mediapipe"
    return folder.is_dir() and any(folder.glob("*.tflite"))


def find_hands(image: np.ndarray, models_dir: Path | str) -> list[Hand]:
    """The hands in `image` (RGB); [] without the MediaPipe models (this placeholder never runs them)."""
    if not models_present(models_dir):
        return []
    return []
