"""The cog: /ask, /sources, /reindex, /help, and questions asked by mention, by reply or in a DM.

Every question takes one path: scope (channel allowlist, DM policy) → cooldown → admission →
engine call in a worker lane under a deadline → answer saved in the state file → posted, with
buttons that survive restarts. Errors end in `replies`, so the user always hears back; slash
command errors reach it through the command tree's `on_error` (see `app.py`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.admission import Gate, Lanes, Ticket
from bot.feedback import feedback_view
from bot.reindex import Reindexer, ReindexFailed
from bot.render import split_message, sources_embed
from bot.scope import DmPolicy, channel_allowed
from bot.state import StateStore
from rag.errors import RagError
from rag.records import Answer

log = logging.getLogger(__name__)

HISTORY_TURNS = 4  # earlier question/answer pairs passed with a follow-up
COOLDOWN_EMOJI = "⏳"
REINDEX_FAILED = ("Re-indexing failed; questions are still answered from the previous index. "
                  "The bot's log has the details.")
HELP = (
    "Ask me about the indexed documents and I answer with numbered sources.\n"
    "• `/ask question:` — ask a question\n"
    "• `@{name} your question` — ask by mentioning me; reply to any of my answers to follow up\n"
    "• `/sources` — list the indexed documents\n"
    "• `/reindex` — re-read the documents (Manage Server)\n"
    "If the documents do not hold the answer, I say so instead of guessing."
)


class Questions(commands.Cog):
    def __init__(self, bot: commands.Bot, engine, settings, store: StateStore, reindexer: Reindexer) -> None:
        self.bot = bot
        self.engine = engine
        self.settings = settings
        self.store = store
        self.reindexer = reindexer
        self.ready = asyncio.Event()
        self.gate = Gate(settings.discord_queue_per_channel, settings.discord_queue_per_guild,
                         settings.discord_cooldown, settings.discord_answer_timeout)
        self.lanes = Lanes(settings.discord_concurrency)
        self.dms = DmPolicy(bot, settings.discord_dms, settings.discord_channels)
        self._reindex_task: asyncio.Task | None = None

    # ----- start-up and shutdown -----------------------------------------------------------
    async def warm_up(self) -> None:
        """Load models and index in a thread while the bot connects; questions wait for this."""
        try:
            await asyncio.to_thread(self.engine.warm_up)
        except RagError as err:
            log.error("the engine failed to load (questions will retry): %s", err)
        except Exception:
            log.exception("the engine failed to load; questions will retry")
        finally:
            # Everything loaded so far lives as long as the process: take it out of the garbage
            # collector's full passes, which would otherwise scan it (~0.2 s with the models
            # loaded) on the event loop's thread every so often.
            gc.freeze()
            self.ready.set()

    async def drain(self, timeout: float) -> bool:
        """Stop admitting questions, let admitted ones finish (up to `timeout`), stop a re-index."""
        self.gate.closed = True
        finished = await self.gate.drained(timeout)
        if not finished:
            log.warning("%d questions were still running at shutdown", self.gate.open_tickets)
        if self.reindexing:
            await self.reindexer.stop()
            self._reindex_task.cancel()
        self.lanes.shutdown()
        return finished

    # ----- the shared path -----------------------------------------------------------------
    async def _answer(self, ticket: Ticket, question: str, history: list[tuple[str, str]] | None) -> Answer:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(self.ready.wait(), max(0.0, ticket.deadline - loop.time()))
        return await self.lanes.run(ticket.deadline, self.engine.ask, question, history)

    async def _remember(self, fn, *args):
        """A state-file call whose failure must not cost the user an answer (no buttons, no follow-ups)."""
        try:
            return await self.store.call(fn, *args)
        except Exception:
            log.exception("state file call %s failed", getattr(fn, "__name__", fn))
            return None

    def _finale(self, answer: Answer, answer_id: int | None) -> dict:
        """What goes on the last part of an answer: the sources embed and, when stored, the buttons."""
        for note in answer.notes:
            if note.detail:  # a failure's own words: users see only note.text (in the embed)
                log.warning("answer %s: %s", answer_id, note.detail)
        extra: dict = {"embed": sources_embed(answer)}
        if answer_id is not None and not answer.abstained:
            extra["view"] = feedback_view(answer_id)
        return extra

    @staticmethod
    def _log_failure(where: str, err: BaseException) -> None:
        if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
            log.warning("%s: no answer before the deadline", where)
        elif isinstance(err, RagError):
            log.warning("%s: %s", where, err)
        else:
            log.error("%s failed", where, exc_info=err)

    # ----- messages: mentions, replies, DMs ------------------------------------------------
    def question_in(self, message: discord.Message) -> str | None:
        """The question a message asks the bot, "" for a bare mention, None if it asks nothing."""
        me = self.bot.user
        if me is None or message.author.bot or message.webhook_id is not None or message.author.id == me.id:
            return None
        mine = rf"<@!?{me.id}>"
        if message.guild is not None:
            if not self.settings.discord_mentions:
                return None
            own_role = message.guild.self_role
            by_role = own_role is not None and own_role in message.role_mentions
            if not by_role and not any(u.id == me.id for u in message.mentions):
                return None
            if own_role is not None:
                mine += rf"|<@&{own_role.id}>"
        return re.sub(mine, "", message.content).strip()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        try:
            await self.handle_message(message)
        except Exception:
            log.exception("message %s in channel %s failed", message.id, message.channel.id)
            await replies.reply(message, replies.SORRY)

    async def handle_message(self, message: discord.Message) -> None:
        question = self.question_in(message)
        if question is None:
            return
        author = message.author.id
        if message.guild is None:
            # The cooldown first: checking the DM policy can cost Discord API calls.
            if self.gate.cooldown_left(author) > 0:
                if self.dms.cached(message.author):  # strangers on cooldown are not even marked
                    await self._mark_cooldown(message)
                return
            allowed = await self.dms.allows(message.author)
            if not allowed:
                self.gate.note_asked(author)
                await replies.quiet_reply(message, replies.BUSY if allowed is None else self.dms.refusal())
                return
        elif not channel_allowed(message.channel, self.settings.discord_channels):
            return
        if self.gate.cooldown_left(author) > 0:
            await self._mark_cooldown(message)
            return
        self.gate.note_asked(author)
        if not question:
            await replies.reply(message, HELP.format(name=self.bot.user.name))
            return
        ticket = self.gate.admit(message.guild and message.guild.id, message.channel.id)
        if ticket is None:
            await replies.quiet_reply(message, replies.CLOSING if self.gate.closed else replies.BUSY)
            return
        try:
            parent = None
            if message.reference is not None and message.reference.message_id:
                parent = await self._remember(self.store.answer_for_message, message.reference.message_id)
            history = await self._remember(self.store.history, parent, HISTORY_TURNS) if parent else None
            async with message.channel.typing():
                answer = await self._answer(ticket, question, history or None)
            await self._post_reply(message, answer, parent)
        except Exception as err:
            self._log_failure(f"question {message.id} in channel {message.channel.id}", err)
            await replies.reply(message, replies.user_message(err))
        finally:
            self.gate.release(ticket)

    async def _mark_cooldown(self, message: discord.Message) -> None:
        """Quietly: a reaction on the question, no message in the channel."""
        try:
            await message.add_reaction(COOLDOWN_EMOJI)
        except Exception as err:  # e.g. no Add Reactions permission: silence beats a public "please wait"
            log.warning("could not mark message %s as on cooldown: %s", message.id, err)

    async def _post_reply(self, message: discord.Message, answer: Answer, parent: int | None) -> None:
        guild = message.guild.id if message.guild else None
        answer_id = await self._remember(self.store.save_answer, answer, message.author.id, guild,
                                         message.channel.id, parent)
        parts = split_message(answer.text)
        sent_ids = []
        for i, part in enumerate(parts):
            extra = self._finale(answer, answer_id) if i == len(parts) - 1 else {}
            sent = await (replies.reply(message, part, **extra) if i == 0
                          else replies.to_channel(message.channel, part, **extra))
            if sent is not None:
                sent_ids.append(sent.id)
        if answer_id is not None and sent_ids:
            await self._remember(self.store.link_messages, answer_id, sent_ids)

    # ----- slash commands ------------------------------------------------------------------
    async def _in_scope(self, interaction: discord.Interaction) -> bool:
        """Cooldown and allowlist / DM policy; answers the interaction itself (ephemeral) when not.

        The cooldown comes first and starts with any attempt: checking the DM policy can cost
        Discord API calls, which a refused user must not be able to repeat at will."""
        wait = self.gate.cooldown_left(interaction.user.id)
        if wait > 0:
            await interaction.response.send_message(f"Please wait {wait:.0f} s before asking again.", ephemeral=True)
            return False
        self.gate.note_asked(interaction.user.id)
        if interaction.guild_id is None:
            allowed = await self.dms.allows(interaction.user)
            if not allowed:
                text = replies.BUSY if allowed is None else self.dms.refusal()
                await interaction.response.send_message(text, ephemeral=True)
                return False
        elif not channel_allowed(interaction.channel, self.settings.discord_channels):
            await interaction.response.send_message("I don't answer in this channel.", ephemeral=True)
            return False
        return True

    @app_commands.command(name="ask", description="Ask a question about the documents")
    @app_commands.describe(question="What do you want to know?")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        if not await self._in_scope(interaction):
            return
        ticket = self.gate.admit(interaction.guild_id, interaction.channel_id)
        if ticket is None:
            text = replies.CLOSING if self.gate.closed else replies.BUSY
            await interaction.response.send_message(text, ephemeral=True)
            return
        try:
            await interaction.response.defer(thinking=True)  # public: the answer is for the channel
            answer = await self._answer(ticket, question, None)
            await self._post_followups(interaction, question, answer)
        finally:
            self.gate.release(ticket)

    async def _post_followups(self, interaction: discord.Interaction, question: str, answer: Answer) -> None:
        answer_id = await self._remember(self.store.save_answer, answer, interaction.user.id, interaction.guild_id,
                                         interaction.channel_id, None)
        parts = split_message(f"**{discord.utils.escape_markdown(question[:200])}**\n{answer.text}")
        sent_ids = []
        for i, part in enumerate(parts):
            extra = self._finale(answer, answer_id) if i == len(parts) - 1 else {}
            sent = None
            if not interaction.is_expired():
                try:
                    sent = await interaction.followup.send(part, wait=True, **extra)
                except discord.HTTPException as err:
                    if not replies.token_expired(err):
                        raise
            if sent is None:  # the 15-minute token is gone: post in the channel instead
                lead = f"{interaction.user.mention} " if not sent_ids else ""
                sent = await replies.to_channel(interaction.channel, lead + part, **extra)
            if sent is not None:
                sent_ids.append(sent.id)
        if answer_id is not None and sent_ids:
            await self._remember(self.store.link_messages, answer_id, sent_ids)

    @app_commands.command(name="sources", description="List the indexed documents")
    async def sources(self, interaction: discord.Interaction) -> None:
        if not await self._in_scope(interaction):
            return
        await interaction.response.defer(thinking=True, ephemeral=True)

        async def listing():
            await self.ready.wait()
            return await asyncio.to_thread(self.engine.sources)

        docs = await asyncio.wait_for(listing(), self.settings.discord_answer_timeout)
        lines = [f"• `{d.source}` — {d.title}" + (f" ({d.date})" if d.date else "") + f" · {d.chunks} chunks"
                 for d in docs]
        for part in split_message("\n".join(lines) or "No documents are indexed."):
            await interaction.followup.send(part, ephemeral=True)

    def may_reindex(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id in self.settings.discord_admins:
            return True
        # The member's resolved permissions in this channel, as Discord sent them with the interaction.
        return bool(interaction.guild_id and interaction.permissions.manage_guild)

    @property
    def reindexing(self) -> bool:
        return self._reindex_task is not None and not self._reindex_task.done()

    @app_commands.command(name="reindex", description="Re-read the documents folder (Manage Server)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def reindex(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:  # Discord hides it in DMs; a stale client may still send it
            await interaction.response.send_message(replies.GUILD_ONLY, ephemeral=True)
            return
        if not self.may_reindex(interaction):
            await interaction.response.send_message("Only members with Manage Server can re-index.", ephemeral=True)
            return
        if self.reindexing:
            await interaction.response.send_message("A re-index is already running; I'll post here when it is done.",
                                                    ephemeral=True)
            return
        self._reindex_task = asyncio.create_task(self.run_reindex(interaction.channel, interaction.user))
        await interaction.response.send_message(
            "Re-indexing the documents. I'll post in this channel when it is done; questions are answered from "
            "the current index meanwhile.", ephemeral=True)

    async def run_reindex(self, channel, user: discord.abc.User) -> None:
        """Ingest in a child process, reload the engine, announce the result in the channel.

        Announced with a plain channel message, not the interaction's follow-up: an ingest can
        outlast the 15-minute interaction token.
        """
        try:
            await self.ready.wait()  # the engine's own start-up may be ingesting: never two at once
            summary = await self.reindexer.run()
            await asyncio.to_thread(self.engine.reload)
            text = f"Re-indexed the documents for {user.mention}: {summary.text()}."
        except ReindexFailed as err:
            log.error("/reindex: %s", err)
            text = REINDEX_FAILED
        except Exception:
            log.exception("/reindex failed")
            text = REINDEX_FAILED
        await replies.to_channel(channel, text)

    @app_commands.command(name="help", description="How to use this bot")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(HELP.format(name=self.bot.user.name), ephemeral=True)
