"""`python launch.py demo`: sample ads into the outputs folder (see studio.workflows.demo)."""

from __future__ import annotations

import argparse

from studio.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def run(settings: Settings, args: argparse.Namespace) -> int:
    from studio.workflows.demo import run_demo

    return run_demo(settings)
