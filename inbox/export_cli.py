"""`inbox export` (filled in by the export work)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def cmd_export(args: argparse.Namespace) -> None:
    raise NotImplementedError
