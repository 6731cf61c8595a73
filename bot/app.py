"""The bot object: built with its engine, settings and state file; connects only when run.

`setup_hook` opens the state file, registers the persistent 👍/👎 buttons and the cog, and starts
loading the engine in the background. Slash commands are *not* synced here: that is
`python -m bot sync`, run once after install or upgrade (syncing at every start is rate-limited
and, mixed with guild syncs, shows every command twice).
"""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.feedback import VoteButton
from bot.questions import Questions
from bot.reindex import Reindexer
from bot.scope import intents, invite_url
from bot.state import StateStore
from rag.config import Settings

log = logging.getLogger(__name__)


def no_voice() -> None:
    """This bot never joins voice: don't warn at start-up that the voice libraries are missing."""
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False


class Tree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """The one place a failed slash command ends: log the detail, tell the user in general words."""
        name = interaction.command.name if interaction.command else "?"
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        Questions._log_failure(f"/{name} from {interaction.user.id} in {interaction.channel_id}", cause)
        await replies.interaction_error(interaction, replies.user_message(cause))


class RagBot(commands.Bot):
    def __init__(self, engine, settings: Settings, store: StateStore | None = None,
                 reindexer: Reindexer | None = None, serve: bool = True) -> None:
        no_voice()
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            tree_cls=Tree,
            # Nothing a document or a user wrote can ping @everyone, roles or users.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.engine = engine
        self.settings = settings
        self.store = store or StateStore(settings.discord_state_file, settings.discord_user_key,
                                         settings.discord_state_days)
        self.questions = Questions(self, engine, settings, self.store, reindexer or Reindexer())
        self.serve = serve  # False: only the command tree is wanted (`python -m bot sync`)
        self._warmup: asyncio.Task | None = None

    async def setup_hook(self) -> None:
        if not self.serve:
            await self.add_cog(self.questions)
            return
        await self.store.call(self.store.open)
        pruned = await self.store.call(self.store.prune)
        if pruned:
            log.info("state file: removed %d answers older than %g days (DISCORD_STATE_DAYS)", pruned,
                     self.settings.discord_state_days)
        self.add_dynamic_items(VoteButton)
        await self.add_cog(self.questions)
        self._warmup = asyncio.create_task(self.questions.warm_up())

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: questions are handled by the Questions cog's listener."""

    async def on_ready(self) -> None:
        log.info("connected as %s to %d servers; invite link: %s", self.user, len(self.guilds),
                 invite_url(self.application_id or self.user.id))

    async def shutdown(self) -> None:
        """SIGTERM/SIGINT: stop taking questions, let running ones finish (bounded), then close."""
        log.info("shutting down: finishing %d questions (up to %.0f s)", self.questions.gate.open_tickets,
                 self.settings.discord_drain_seconds)
        await self.questions.drain(self.settings.discord_drain_seconds)
        await self.close()

    async def close(self) -> None:
        await super().close()
        await asyncio.to_thread(self.store.close)  # may wait for a state-file call still running


def create_bot(engine=None, settings: Settings | None = None, **parts) -> RagBot:
    """The configured bot, not connected; settings, if not given, as `rag` reads them (.env, paths)."""
    if settings is None:
        from rag.startup import settings_from_environment

        settings = settings_from_environment()
    if engine is None:
        from rag.engine import build_engine

        engine = build_engine(settings)
    return RagBot(engine, settings, **parts)
