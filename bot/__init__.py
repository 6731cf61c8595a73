"""Discord front end: `create_bot()` builds the bot; `python -m bot` runs it.

discord.py is an optional extra, so it is imported only when the bot is built: `python -m bot
--help` and `export-feedback` work, and the "not installed" message is one line, without it.
"""

__all__ = ["RagBot", "create_bot"]


def __getattr__(name: str):
    if name in __all__:
        from bot import app

        return getattr(app, name)
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
