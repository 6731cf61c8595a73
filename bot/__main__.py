"""`python -m bot` / `rag-bot` (the commands live in `bot.cli`)."""

from __future__ import annotations

import sys

from bot.cli import _parser, main

__all__ = ["_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
