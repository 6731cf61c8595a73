"""The cog: /ask, /sources, /reindex, /help and @mentions, all answered off the event loop.

Engine calls are blocking (embedding, FAISS, maybe an LLM), so each runs in a worker thread under
a semaphore; the loop only awaits. Questions that arrive before the engine has finished loading
wait on an event instead of being dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict

import discord
from discord import app_commands
from discord.ext import commands

from bot.feedback import FeedbackView
from bot.render import split_message, sources_embed
from rag.errors import RagError
from rag.records import Answer

log = logging.getLogger(__name__)

HELP = (
    "Ask me about the indexed documents and I answer with numbered sources.\n"
    "• `/ask question:` — ask a question\n"
    "• `@{name} your question` — ask by mentioning me; reply to my answer to follow up\n"
    "• `/sources` — list the indexed documents\n"
    "• `/reindex` — re-read the documents (Manage Server or configured admins)\n"
    "If the documents do not hold the answer, I say so instead of guessing."
)
SORRY = "Sorry, I could not answer that right now. The problem has been logged."


class Questions(commands.Cog):
    def __init__(self, bot: commands.Bot, engine, settings) -> None:
        self.bot = bot
        self.engine = engine
        self.settings = settings
        self.ready = asyncio.Event()
        self.load_error: str | None = None
        self.slots = asyncio.Semaphore(settings.discord_concurrency)
        self.last_asked: dict[int, float] = {}
        self.threads: OrderedDict[int, tuple[str, str]] = OrderedDict()  # bot reply id → (question, answer)
        self.reindexing = asyncio.Lock()

    # ----- start-up ----------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Load models and index in a thread while the bot connects."""
        try:
            await asyncio.to_thread(self.engine.warm_up)
        except Exception as err:
            self.load_error = str(err) if isinstance(err, RagError) else type(err).__name__
            log.exception("engine failed to load")
        finally:
            self.ready.set()

    # ----- shared checks -----------------------------------------------------------------
    def channel_allowed(self, channel_id: int | None) -> bool:
        allowed = self.settings.discord_channels
        return not allowed or channel_id in allowed

    def cooldown_left(self, user_id: int) -> float:
        last = self.last_asked.get(user_id)
        if last is None:
            return 0.0
        return max(0.0, self.settings.discord_cooldown - (time.monotonic() - last))

    async def answer(self, question: str, history=None) -> Answer:
        await self.ready.wait()
        async with self.slots:
            return await asyncio.to_thread(self.engine.ask, question, history)

    def remember(self, message: discord.Message | None, question: str, answer: Answer) -> None:
        if message is None:
            return
        self.threads[message.id] = (question, answer.text)
        while len(self.threads) > 2000:
            self.threads.popitem(last=False)

    def history_for(self, message: discord.Message) -> list[tuple[str, str]] | None:
        ref = message.reference
        if ref is None or ref.message_id not in self.threads:
            return None
        return [self.threads[ref.message_id]]

    def view_for(self, answer: Answer) -> discord.ui.View | None:
        return None if answer.abstained else FeedbackView(answer, self.settings.feedback_file)

    # ----- mentions ----------------------------------------------------------------------
    def question_from_mention(self, message: discord.Message) -> str | None:
        me = self.bot.user
        if me is None or message.author.bot:
            return None
        pattern = re.compile(rf"<@!?{me.id}>")
        if me not in message.mentions and not pattern.search(message.content):
            return None
        return pattern.sub("", message.content).strip()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self.settings.discord_mentions:
            return
        question = self.question_from_mention(message)
        if question is None or not self.channel_allowed(message.channel.id):
            return
        if not question:
            await message.reply(HELP.format(name=self.bot.user.name))
            return
        wait = self.cooldown_left(message.author.id)
        if wait > 0:
            await message.reply(f"Please wait {wait:.0f} s before asking again.")
            return
        self.last_asked[message.author.id] = time.monotonic()
        history = self.history_for(message)
        try:
            async with message.channel.typing():
                answer = await self.answer(question, history)
        except RagError as err:
            log.warning("question from %s in %s failed: %s", message.author.id, message.channel.id, err)
            await message.reply(f"Sorry: {err}")
            return
        except Exception:
            log.exception("question from %s in %s failed (%d chars)", message.author.id, message.channel.id, len(question))
            await message.reply(SORRY)
            return
        parts = split_message(answer.text)
        embed = sources_embed(answer)
        sent = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            kwargs = {"embed": embed, "view": self.view_for(answer)} if last else {}
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
            sent = await (message.reply(part, **kwargs) if i == 0 else message.channel.send(part, **kwargs))
        self.remember(sent, question, answer)

    # ----- slash commands ----------------------------------------------------------------
    async def _reject(self, interaction: discord.Interaction) -> bool:
        if not self.channel_allowed(interaction.channel_id):
            await interaction.response.send_message("I don't answer in this channel.", ephemeral=True)
            return True
        return False

    @app_commands.command(name="ask", description="Ask a question about the documents")
    @app_commands.describe(question="What do you want to know?")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        if await self._reject(interaction):
            return
        wait = self.cooldown_left(interaction.user.id)
        if wait > 0:
            await interaction.response.send_message(f"Please wait {wait:.0f} s before asking again.", ephemeral=True)
            return
        self.last_asked[interaction.user.id] = time.monotonic()
        await interaction.response.defer(thinking=True)
        try:
            answer = await self.answer(question)
        except RagError as err:
            log.warning("/ask from %s failed: %s", interaction.user.id, err)
            await interaction.followup.send(f"Sorry: {err}", ephemeral=True)
            return
        except Exception:
            log.exception("/ask from %s in %s failed (%d chars)", interaction.user.id, interaction.channel_id, len(question))
            await interaction.followup.send(SORRY, ephemeral=True)
            return
        parts = split_message(f"**{discord.utils.escape_markdown(question[:200])}**\n{answer.text}")
        embed = sources_embed(answer)
        msg = None
        for i, part in enumerate(parts):
            kwargs = {}
            if i == len(parts) - 1:
                kwargs = {k: v for k, v in {"embed": embed, "view": self.view_for(answer)}.items() if v is not None}
            msg = await interaction.followup.send(part, wait=True, **kwargs)
        self.remember(msg, question, answer)

    @app_commands.command(name="sources", description="List the indexed documents")
    async def sources(self, interaction: discord.Interaction) -> None:
        if await self._reject(interaction):
            return
        await interaction.response.defer(thinking=True)
        try:
            await self.ready.wait()
            docs = await asyncio.to_thread(self.engine.sources)
        except Exception:
            log.exception("/sources failed")
            await interaction.followup.send(SORRY, ephemeral=True)
            return
        lines = [f"• `{d['source']}` — {d['title']}" + (f" ({d['date']})" if d["date"] else "") + f" · {d['chunks']} chunks"
                 for d in docs]
        for part in split_message("\n".join(lines) or "No documents are indexed."):
            await interaction.followup.send(part)

    def may_reindex(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id in self.settings.discord_admins:
            return True
        # The member's resolved permissions in this channel, as Discord sent them with the interaction.
        return bool(interaction.guild_id and interaction.permissions.manage_guild)

    @app_commands.command(name="reindex", description="Re-read the documents folder (admins)")
    async def reindex(self, interaction: discord.Interaction) -> None:
        if not self.may_reindex(interaction):
            await interaction.response.send_message("Only members with Manage Server can re-index.", ephemeral=True)
            return
        if self.reindexing.locked():
            await interaction.response.send_message("A re-index is already running.", ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        async with self.reindexing:
            try:
                # Questions keep being answered from the old index until the engine swaps in the new one.
                report = await asyncio.to_thread(self.engine.ingest)
            except Exception as err:
                log.exception("/reindex failed")
                await interaction.followup.send(f"Re-index failed: {err}" if isinstance(err, RagError) else SORRY)
                return
        await interaction.followup.send(
            f"Re-indexed: {report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.unchanged} unchanged ({report.chunks_embedded} chunks embedded in {report.seconds:.1f} s)."
        )

    @app_commands.command(name="help", description="How to use this bot")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(HELP.format(name=self.bot.user.name), ephemeral=True)
