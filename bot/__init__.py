"""Discord front end: `create_bot()` builds the bot; `python -m bot` runs it."""

from bot.app import RagBot, create_bot

__all__ = ["RagBot", "create_bot"]
