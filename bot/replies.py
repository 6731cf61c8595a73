"""Every way the bot speaks, with one rule for errors: the user always hears back, in general
words; the log gets the detail.

- Core errors (`RagError`) can name server paths and settings, so users get a fixed sentence per
  kind of error, never the error's text.
- An interaction that has not been answered yet gets an ephemeral note. After a *public* defer
  ("thinking…" is showing) Discord makes the first follow-up take the defer's visibility, so an
  error can no longer be ephemeral: the "thinking…" message is edited into the polite error
  (public, one line), which also guarantees it never stays "thinking…" forever.
- An interaction token lives 15 minutes. When it has expired (or Discord says so: 50027 Invalid
  Webhook Token, 10015 Unknown Webhook) the message is posted in the channel instead.
- Replies to messages use `fail_if_not_exists=False`, so a deleted question still gets its
  answer, and never ping anyone (the bot's AllowedMentions are none).
"""

from __future__ import annotations

import asyncio
import logging

import discord

from rag.errors import BadQuestion, IndexCorrupt, IndexIncompatible, IndexMissing, RagError, SeedsMissing

log = logging.getLogger(__name__)

SORRY = "Sorry, I could not answer that right now. The problem has been logged."
TOO_SLOW = "Sorry, that took too long to answer. Please try again in a moment."
BUSY = "I'm busy answering other questions; please try again in a moment."
CLOSING = "I'm restarting; please ask again in a minute."
INDEX_DOWN = "The document index is not available right now; an admin can find the reason in the bot's log."
EMPTY = "Please type a question about the documents."
GUILD_ONLY = "This command works only in a server."
EXPIRED_TOKEN_CODES = {50027, 10015}


def user_message(err: BaseException) -> str:
    """What a user is told about `err` (its own text can hold paths: it goes to the log only)."""
    if isinstance(err, discord.app_commands.CommandInvokeError):
        err = err.original
    if isinstance(err, discord.app_commands.NoPrivateMessage):
        return GUILD_ONLY
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        return TOO_SLOW
    if isinstance(err, BadQuestion):
        return EMPTY
    if isinstance(err, (IndexMissing, IndexCorrupt, IndexIncompatible, SeedsMissing)):
        return INDEX_DOWN
    return SORRY  # any other RagError too: its text is for the log


def token_expired(err: discord.HTTPException) -> bool:
    return err.code in EXPIRED_TOKEN_CODES or err.status == 401


async def reply(message: discord.Message, content: str, **kwargs) -> discord.Message | None:
    """Reply to `message`, or post in its channel if it was deleted meanwhile; None if both fail."""
    try:
        ref = message.to_reference(fail_if_not_exists=False)
        return await message.channel.send(content, reference=ref, mention_author=False, **kwargs)
    except discord.HTTPException as err:
        log.warning("could not reply in channel %s: %s", message.channel.id, err)
        return None


async def quiet_reply(message: discord.Message, content: str) -> None:
    """A short notice that sends no push notification."""
    await reply(message, content, silent=True)


async def to_channel(channel, content: str, **kwargs) -> discord.Message | None:
    if channel is None or not hasattr(channel, "send"):
        return None
    try:
        return await channel.send(content, **kwargs)
    except discord.HTTPException as err:
        log.warning("could not post in channel %s: %s", getattr(channel, "id", None), err)
        return None


async def interaction_error(interaction: discord.Interaction, text: str) -> None:
    """Close the interaction with `text`: ephemeral if nothing is shown yet, else edit "thinking…"."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if not interaction.is_expired():
            await interaction.edit_original_response(content=text, embed=None, view=None)
            return
    except discord.HTTPException as err:
        if not token_expired(err):
            log.warning("could not report an error on interaction %s: %s", interaction.id, err)
    await to_channel(interaction.channel, f"{interaction.user.mention} {text}")
