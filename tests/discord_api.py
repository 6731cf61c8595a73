"""Discord's interaction HTTP API, played back locally for slash-command and button tests.

dpytest has no slash-command support, so interactions are real `discord.Interaction` objects built
from a gateway payload (INTERACTION_CREATE) and dispatched the way discord.py's gateway does it
(`ConnectionState.parse_interaction_create`: the command tree for commands, the view store for
buttons). Their responses go through discord.py's real webhook adapter code down to `request()`,
which this subclass answers the way Discord's API does, recording each call. It can also answer
like Discord does once an interaction token has expired (401, code 50027).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime, timedelta, timezone

import discord
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

_seq = itertools.count(1)


def snowflake(when: datetime | None = None) -> int:
    """A unique id whose timestamp is `when` (default now): discord.py derives expiry from it."""
    return discord.utils.time_snowflake(when or datetime.now(timezone.utc)) + next(_seq) % 4096


class _Response:
    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason


class RecordingAdapter(AsyncWebhookAdapter):
    def __init__(self, bot_user: discord.ClientUser, channel_id: int) -> None:
        super().__init__()
        self.bot_user = bot_user
        self.channel_id = channel_id
        self.calls: list[dict] = []
        self.token_expired = False  # answer webhook calls like Discord after the 15 minutes

    async def request(self, route, session, *, payload=None, multipart=None, files=None, params=None, **kwargs):
        if payload is None and multipart:
            payload = json.loads(next(p["value"] for p in multipart if p["name"] == "payload_json"))
        call = {"method": route.method, "path": route.path, "payload": payload or {}}
        if route.path.endswith("/callback"):
            self.calls.append(call)
            kind = (payload or {}).get("type")
            return {"interaction": {"id": str(snowflake()), "type": 2,
                                    "response_message_loading": kind == 5,
                                    "response_message_ephemeral": bool(((payload or {}).get("data") or {}).get("flags", 0) & 64)}}
        if self.token_expired:
            call["refused"] = True
            self.calls.append(call)
            raise discord.HTTPException(_Response(401, "Unauthorized"), {"code": 50027, "message": "Invalid Webhook Token"})
        self.calls.append(call)
        if route.method in ("POST", "PATCH") and "/webhooks/" in route.path:
            return self.message_payload(payload or {})
        return None

    def message_payload(self, payload: dict) -> dict:
        return {
            "id": str(snowflake()), "channel_id": str(self.channel_id), "type": 0,
            "author": {"id": str(self.bot_user.id), "username": self.bot_user.name, "discriminator": "0000",
                       "avatar": None, "bot": True},
            "content": payload.get("content", ""), "timestamp": datetime.now(timezone.utc).isoformat(),
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": payload.get("embeds", []), "pinned": False,
            "components": payload.get("components", []), "flags": payload.get("flags", 0),
        }

    # What a test wants to know about the exchange ------------------------------------------
    def kinds(self) -> list[str]:
        out = []
        for c in self.calls:
            if c["path"].endswith("/callback"):
                out.append({5: "defer", 4: "message"}.get(c["payload"].get("type"), "other"))
            elif c["method"] == "PATCH":
                out.append("edit")
            else:
                out.append("followup")
        return out

    def followups(self) -> list[dict]:
        return [c["payload"] for c in self.calls if not c["path"].endswith("/callback") and not c.get("refused")]

    def responses(self) -> list[dict]:
        """What the user was shown first: the initial response's message data (type 4)."""
        return [c["payload"].get("data") or {} for c in self.calls if c["path"].endswith("/callback")]


def install(bot_user, channel_id: int) -> RecordingAdapter:
    adapter = RecordingAdapter(bot_user, channel_id)
    async_context.set(adapter)
    return adapter


def _channel_payload(channel) -> dict:
    if isinstance(channel, discord.Thread):
        return {"id": str(channel.id), "type": 11, "guild_id": str(channel.guild.id), "name": channel.name,
                "parent_id": str(channel.parent_id), "owner_id": str(channel.owner_id),
                "thread_metadata": {"archived": False, "auto_archive_duration": 1440,
                                    "archive_timestamp": datetime.now(timezone.utc).isoformat(), "locked": False}}
    if isinstance(channel, discord.DMChannel):
        return {"id": str(channel.id), "type": 1}
    return {"id": str(channel.id), "type": 0, "guild_id": str(channel.guild.id), "name": channel.name,
            "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None}


def _base(bot, member, channel, kind: int, created: datetime | None, permissions: int) -> dict:
    user = {"id": str(member.id), "username": member.name, "discriminator": "0000", "avatar": None}
    data = {
        "id": str(snowflake(created)), "application_id": str(bot.user.id), "type": kind, "token": "interaction-token",
        "version": 1, "channel_id": str(channel.id), "attachment_size_limit": 8 * 1024 * 1024, "locale": "en-US",
        "app_permissions": str(2**53 - 1), "channel": _channel_payload(channel),
    }
    guild = getattr(channel, "guild", None)
    if guild is None:
        data["user"] = user
    else:
        data["guild_id"] = str(guild.id)
        data["member"] = {"user": user, "roles": [], "joined_at": datetime.now(timezone.utc).isoformat(),
                          "deaf": False, "mute": False, "permissions": str(permissions), "flags": 0}
    return data


def slash_payload(bot, member, channel, name: str, options: dict | None = None, permissions: int = 0,
                  created: datetime | None = None) -> dict:
    data = _base(bot, member, channel, 2, created, permissions)
    data["data"] = {"id": str(snowflake()), "name": name, "type": 1,
                    "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]}
    return data


def slash_interaction(bot, member, channel, name: str, options: dict | None = None, permissions: int = 0,
                      created: datetime | None = None) -> discord.Interaction:
    return discord.Interaction(data=slash_payload(bot, member, channel, name, options, permissions, created),
                               state=bot._connection)


def click_payload(bot, member, channel, message: dict, custom_id: str) -> dict:
    """A button click on `message` (a message payload as Discord sent it, components included)."""
    data = _base(bot, member, channel, 3, None, 0)
    data["message"] = message
    data["data"] = {"custom_id": custom_id, "component_type": 2}
    return data


async def dispatch(bot, data: dict) -> None:
    """Deliver INTERACTION_CREATE as the gateway does and wait for the handlers it starts."""
    before = asyncio.all_tasks()
    bot._connection.parse_interaction_create(data)
    started = [t for t in asyncio.all_tasks() - before
               if t.get_name().startswith(("CommandTree-invoker", "discord-ui-"))]
    await asyncio.gather(*started)


def old(minutes: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=minutes)
