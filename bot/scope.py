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
from collections import deque

import discord

log = logging.getLogger(__name__)

SCOPES = ("bot", "applications.commands")
DM_CACHE_SECONDS = 600
# Membership look-ups (one REST call per server) across all DMs: Discord's global rate limit is
# shared with every answer the bot posts, so strangers writing in must not be able to spend it.
FETCHES_PER_MINUTE = 20


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
    allowlist). Membership is looked up in the member cache of every such server first, then
    fetched from Discord (no members intent) within `fetch_budget` calls a minute for all DMs
    together; the result, member or not, is cached for DM_CACHE_SECONDS."""

    def __init__(self, bot: discord.Client, policy: str, allowlist: tuple[int, ...]) -> None:
        self.bot = bot
        self.policy = policy
        self.allowlist = allowlist
        self._cache: dict[int, tuple[bool, float]] = {}
        self.fetch_budget = FETCHES_PER_MINUTE
        self._fetches: deque[float] = deque()

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

    def cached(self, user: discord.abc.User) -> bool | None:
        """The last answer for this user while it is fresh, else None."""
        if self.policy != "members":
            return self.policy == "all"
        hit = self._cache.get(user.id)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def _may_fetch(self) -> bool:
        now = time.monotonic()
        while self._fetches and now - self._fetches[0] > 60:
            self._fetches.popleft()
        if len(self._fetches) >= self.fetch_budget:
            return False
        self._fetches.append(now)
        return True

    async def allows(self, user: discord.abc.User) -> bool | None:
        """Whether `user` may ask in a DM; None when that cannot be told now (look-ups spent)."""
        if self.policy != "members":
            return self.policy == "all"
        if (known := self.cached(user)) is not None:
            return known
        guilds = self._guilds()
        member = any(guild.get_member(user.id) is not None for guild in guilds)
        for guild in [] if member else guilds:
            if not self._may_fetch():
                log.warning("DM from user %s not checked: %d membership look-ups in the last minute",
                            user.id, self.fetch_budget)
                return None  # not cached: the user may try again once the minute has passed
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
