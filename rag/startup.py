"""What every entry point does first: read .env, build settings, set up logging.

Only entry points call this (the CLI, the eval harness, the bot), so importing the library never
reads the environment. A bad setting returns None after printing one line naming the variable.
"""

from __future__ import annotations

import logging
import sys

from rag.config import Settings

NOISY = ("bm25s", "sentence_transformers", "transformers", "httpx", "faiss", "discord")


def startup(min_level: str | None = None) -> Settings | None:
    from dotenv import load_dotenv

    from rag.config import load_settings
    from rag.errors import ConfigError

    load_dotenv()
    try:
        settings = load_settings()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return None
    level = logging.getLevelName(settings.log_level)
    if min_level is not None:
        level = min(level, logging.getLevelName(min_level))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, level))
    return settings
