"""`python -m bot` / `rag-bot`: run the Discord bot with settings from the environment and .env."""

from __future__ import annotations

import sys


def _parser():
    from rag.helptext import BOT_EXIT, make_parser

    return make_parser(
        "python -m bot", "Run the Discord bot: it answers /ask, @mentions and replies in the allowed "
        "channels from the indexed documents, with citations. The index is built or refreshed in the "
        "background while the bot connects. Needs DISCORD_TOKEN (see README, 'Discord setup'). Also "
        "installed as `rag-bot`.",
        BOT_EXIT, "discord", "documents", "answering", "logging",
    )


def main(argv: list[str] | None = None) -> int:
    from rag.startup import startup

    _parser().parse_args(argv)  # --help and --version exit here; there are no other arguments

    settings = startup(min_level="INFO")
    if settings is None:
        return 2
    if not settings.discord_token:
        print("DISCORD_TOKEN is not set: put the bot token in .env (see README, 'Discord setup').", file=sys.stderr)
        return 2
    try:
        import discord
    except ImportError:  # an optional extra: the CLI works without it
        print("the Discord adapter is not installed: pip install 'seedrag[discord]' (make install includes it).",
              file=sys.stderr)
        return 2

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
