"""`python -m bot` / `rag-bot`: run the Discord bot with settings from the environment and .env."""

from __future__ import annotations

import sys


def main() -> int:
    from rag.startup import startup

    settings = startup(min_level="INFO")
    if settings is None:
        return 2
    if not settings.discord_token:
        print("DISCORD_TOKEN is not set: put the bot token in .env (see README, 'Discord setup').", file=sys.stderr)
        return 2
    import discord

    from bot.app import create_bot

    bot = create_bot(settings=settings)
    try:
        bot.run(settings.discord_token, log_handler=None)
    except discord.LoginFailure:
        print("Discord rejected DISCORD_TOKEN: reset the token in the developer portal and update .env.", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("Discord refused the Message Content intent: enable it under Bot → Privileged Gateway Intents, "
              "or set DISCORD_HANDLE_MENTIONS=false.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
