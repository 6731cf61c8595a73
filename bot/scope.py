"""Where the bot listens and what it asks Discord for: intents, invite permissions, channel
allowlist, DM policy.

Intents are minimal: no privileged intent at all. Without Message Content the bot still receives
the text of messages that mention it (which includes replies to its answers, while the reply
ping is on) and of DMs, which is all it answers.
"""

from __future__ import annotations

import base64
import logging
import time

import discord

log = logging.getLogger(__name__)

SCOPES = ("bot", "applications.commands")
DM_CACHE_SECONDS = 600


def intents() -> discord.Intents:
    out = discord.Intents.none()
    out.guilds = True  # channels and threads, for the allowlist and the DM policy
    out.guild_messages = True  # mentions of the bot and replies to it
    out.dm_messages = True  # direct messages (see DISCORD_DMS)
    return out


def invite_permissions() -> discord.Permissions:
    """What the bot needs in a channel: read it, answer in it and in its threads, show embeds,
    see the message it replies to, and mark a question ⏳ when its author is on cooldown."""
    return discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                               embed_links=True, read_message_history=True, add_reactions=True)


def invite_url(client_id: int) -> str:
    return discord.utils.oauth_url(client_id, permissions=invite_permissions(), scopes=SCOPES)


def client_id_from_token(token: str) -> int | None:
    """A bot token starts with the bot's user id (= application id) in base64."""
    head = token.split(".", 1)[0]
    try:
        text = base64.b64decode(head + "=" * (-len(head) % 4), validate=False).decode()
    except ValueError:
        return None
    return int(text) if text.isdigit() else None


def channel_allowed(channel, allowlist: tuple[int, ...]) -> bool:
    """Empty allowlist: everywhere. A thread is allowed when it or its parent channel is listed."""
    if not allowlist:
        return True
    return getattr(channel, "id", None) in allowlist or getattr(channel, "parent_id", None) in allowlist


class DmPolicy:
    """DISCORD_DMS: `off`, `all`, or `members` (the sender is a member of a server the bot
    serves: one holding an allowlisted channel, or any server the bot is in if there is no
    allowlist). Membership is fetched from Discord (no members intent) and cached."""

    def __init__(self, bot: discord.Client, policy: str, allowlist: tuple[int, ...]) -> None:
        self.bot = bot
        self.policy = policy
        self.allowlist = allowlist
        self._cache: dict[int, tuple[bool, float]] = {}

    def refusal(self) -> str:
        if self.policy == "off":
            return "I don't answer direct messages; please ask in a server channel."
        return "I answer direct messages only from members of a server I serve."

    def _guilds(self) -> list[discord.Guild]:
        if not self.allowlist:
            return list(self.bot.guilds)
        ids = set()
        for channel_id in self.allowlist:
            channel = self.bot.get_channel(channel_id)
            if channel is not None and getattr(channel, "guild", None) is not None:
                ids.add(channel.guild.id)
        return [g for g in self.bot.guilds if g.id in ids]

    async def allows(self, user: discord.abc.User) -> bool:
        if self.policy != "members":
            return self.policy == "all"
        hit = self._cache.get(user.id)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        member = False
        for guild in self._guilds():
            if guild.get_member(user.id) is not None:
                member = True
                break
            try:
                await guild.fetch_member(user.id)
                member = True
                break
            except discord.NotFound:
                continue
            except discord.HTTPException as err:
                log.warning("could not check membership in guild %s: %s", guild.id, err)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[user.id] = (member, time.monotonic() + DM_CACHE_SECONDS)
        return member
