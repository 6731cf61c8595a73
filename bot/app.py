"""The bot object: built with its engine and settings, connects only when run."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from bot.questions import Questions
from rag.config import Settings

log = logging.getLogger(__name__)


class RagBot(commands.Bot):
    def __init__(self, engine, settings: Settings) -> None:
        intents = discord.Intents.default()
        intents.message_content = settings.discord_mentions  # privileged: enable it in the developer portal
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            # Nothing a document or a user wrote can ping @everyone, roles or users.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.engine = engine
        self.settings = settings
        self.questions = Questions(self, engine, settings)
        self._synced = False
        self._warmup: asyncio.Task | None = None

    async def setup_hook(self) -> None:
        await self.add_cog(self.questions)
        self._warmup = asyncio.create_task(self.questions.warm_up())

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: mentions are questions, handled by the Questions cog's listener."""

    async def on_ready(self) -> None:
        log.info("connected as %s", self.user)
        if self._synced:
            return
        self._synced = True
        try:
            guild_id = self.settings.discord_guild
            if guild_id:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
            else:
                await self.tree.sync()
        except Exception:
            log.exception("slash command sync failed; /commands may be missing until the next start")


def create_bot(engine=None, settings: Settings | None = None) -> RagBot:
    """The configured bot, not connected; engine and settings come from the environment if not given."""
    if settings is None:
        from rag.config import load_settings

        settings = load_settings()
    if engine is None:
        from rag.engine import build_engine

        engine = build_engine(settings)
    return RagBot(engine, settings)
