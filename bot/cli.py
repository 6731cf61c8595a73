"""`python -m bot` / `rag-bot`: run the bot, sync its slash commands, print its invite link,
export feedback. Every failure a user can fix ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import signal
import sys

log = logging.getLogger("bot")


DESCRIPTION = (
    "Run the Discord bot: it answers /ask, @mentions and replies to its answers in the allowed "
    "channels (and DMs, per DISCORD_DMS) from the indexed documents, with citations. First time: "
    "`python -m bot invite`, then `python -m bot sync`, then `python -m bot`. SIGTERM or Ctrl-C "
    "lets running answers finish (DISCORD_DRAIN_SECONDS) and exits 0. Also installed as `rag-bot`."
)


def _parser() -> argparse.ArgumentParser:
    from rag.helptext import (BOT_EXIT, BOT_EXPORT_EXIT, BOT_INVITE_EXIT, BOT_SYNC_EXIT, add_command,
                              make_parser)

    p = make_parser("python -m bot", DESCRIPTION, BOT_EXIT, "discord", "documents", "answering", "logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add_command(sub, "run", "connect and answer questions (the default)",
                "Connect to Discord and answer questions until SIGTERM or Ctrl-C (the same as no command). "
                "The index is loaded, and updated if the documents changed, in the background.",
                BOT_EXIT, "discord", "documents", "answering", "logging")
    sync = add_command(sub, "sync", "publish the slash commands to Discord (after install or upgrade)",
                       "Publish /ask, /sources, /reindex and /help. Global commands can take a while to "
                       "appear; --guild publishes to one server instantly (for testing).",
                       BOT_SYNC_EXIT, "DISCORD_TOKEN", "RAG_LOG_LEVEL")
    sync.add_argument("--guild", type=int, metavar="ID", help="publish to this server only, instantly")
    sync.add_argument("--clear", action="store_true", help="with --guild: remove the commands published there")
    inv = add_command(sub, "invite", "print the link that adds the bot to a server, with the permissions it needs",
                      "Print the OAuth2 link that adds the bot to a server with the permissions it needs "
                      "(and the permissions integer on stderr). Needs no connection to Discord.",
                      BOT_INVITE_EXIT, "DISCORD_TOKEN")
    inv.add_argument("--client-id", type=int, metavar="ID",
                     help="the Application ID (default: read from DISCORD_TOKEN)")
    exp = add_command(sub, "export-feedback", "write every 👍/👎 vote with its question and answer",
                      "Write every 👍/👎 vote from the bot's state file with the question, the answer and "
                      "its sources; user ids appear only as keyed hashes. Needs no connection to Discord.",
                      BOT_EXPORT_EXIT, "DISCORD_STATE_FILE", "DISCORD_USER_HASH_KEY")
    exp.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                     help="one JSON object per line, or CSV with a header (default jsonl)")
    exp.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from rag.startup import startup

    settings = startup(min_level="INFO")
    if settings is None:
        return 2
    if args.command == "export-feedback":
        return _export(settings, args.format, args.out)
    try:
        import discord  # noqa: F401
    except ImportError:  # an optional extra: the rest of seedrag works without it
        return _fail("the Discord adapter is not installed: pip install 'seedrag[discord]' (make install includes it)")
    if args.command == "invite":
        return _invite(settings, args.client_id)
    if not settings.discord_token:
        return _fail("DISCORD_TOKEN is not set: put the bot token in .env (see README, 'Discord setup')")
    try:
        if args.command == "sync":
            if args.clear and not args.guild:
                return _fail("--clear needs --guild ID")
            names = asyncio.run(_sync(settings, args.guild, args.clear))
            where = f"server {args.guild}" if args.guild else "all servers (may take a while to appear)"
            print(f"synced {', '.join('/' + n for n in names) or 'no commands'} to {where}")
            return 0
        asyncio.run(_serve(settings))
        return 0
    except Exception as err:  # everything a user can act on becomes one line
        return _fail(_explain(err))


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _explain(err: BaseException) -> str:
    import aiohttp
    import discord

    from bot.state import StateError

    if isinstance(err, discord.LoginFailure):
        return "Discord rejected DISCORD_TOKEN: reset the token in the developer portal (Bot → Reset Token) and update .env"
    if isinstance(err, discord.PrivilegedIntentsRequired):
        return "Discord refused a privileged intent; this bot needs none: check for a modified intents setting"
    if isinstance(err, (aiohttp.ClientError, OSError, asyncio.TimeoutError, discord.GatewayNotFound)):
        return f"cannot reach Discord ({err or type(err).__name__}): check the network connection and try again"
    if isinstance(err, discord.HTTPException):
        return f"Discord refused the request (HTTP {err.status}: {err.text or 'no message'})"
    if isinstance(err, StateError):
        return f"state file: {err}"
    log.error("the bot stopped", exc_info=err)
    return f"the bot stopped: {type(err).__name__}; the log above has the details"


async def _serve(settings) -> None:
    from bot.app import create_bot

    bot = create_bot(settings=settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: quitting without waiting", sig.name)
            os._exit(1)
        log.info("%s: stopping", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord_token))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            stopping.cancel()
            runner.result()  # a login or connection failure
            return
        await bot.shutdown()
        await asyncio.wait({runner}, timeout=10)


async def _sync(settings, guild_id: int | None, clear: bool) -> list[str]:
    import discord

    from bot.app import create_bot

    bot = create_bot(settings=settings, serve=False)
    async with bot:
        await bot.login(settings.discord_token)
        guild = discord.Object(id=guild_id) if guild_id else None
        if guild is not None:
            if clear:
                bot.tree.clear_commands(guild=guild)
            else:
                bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
    return [c.name for c in synced]


def _invite(settings, client_id: int | None) -> int:
    from bot.scope import client_id_from_token, invite_permissions, invite_url

    client_id = client_id or client_id_from_token(settings.discord_token)
    if client_id is None:
        return _fail("no application id: pass --client-id (Developer Portal → General Information → "
                     "Application ID) or set DISCORD_TOKEN")
    print(invite_url(client_id))
    print(f"(permissions integer {invite_permissions().value})", file=sys.stderr)
    return 0


def _export(settings, fmt: str, out: str | None) -> int:
    from bot.state import StateError, StateStore

    path = settings.discord_state_file
    if not path.exists():
        return _fail(f"no state file at {str(path)!r}: the bot has not run here yet, or DISCORD_STATE_FILE points elsewhere")
    try:
        rows = StateStore(path, settings.discord_user_key).open().feedback()
    except StateError as err:
        return _fail(f"state file: {err}")
    fh = open(out, "w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        if fmt == "jsonl":
            for row in rows:
                fh.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
        else:
            writer = csv.writer(fh)
            writer.writerow(["time", "vote", "user", "answer_id", "question", "answer", "sources", "backend"])
            for r in rows:
                writer.writerow([r.time, r.vote, r.user, r.answer_id, r.question, r.answer, "; ".join(r.sources), r.backend])
    finally:
        if out:
            fh.close()
    if out:
        print(f"{len(rows)} votes written to {out}", file=sys.stderr)
    return 0
