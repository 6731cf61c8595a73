"""Discord's interaction HTTP API, played back locally for slash-command tests.

dpytest has no slash-command support, so interactions are real `discord.Interaction` objects built
from a gateway payload, and their responses go through discord.py's real webhook adapter code down
to `request()`, which this subclass answers the way Discord's API does, recording each call.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone

import discord
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

_ids = itertools.count(1_300_000_000_000_000_000)


class RecordingAdapter(AsyncWebhookAdapter):
    def __init__(self, bot_user: discord.ClientUser, channel_id: int) -> None:
        super().__init__()
        self.bot_user = bot_user
        self.channel_id = channel_id
        self.calls: list[dict] = []

    async def request(self, route, session, *, payload=None, multipart=None, files=None, params=None, **kwargs):
        if payload is None and multipart:
            payload = json.loads(next(p["value"] for p in multipart if p["name"] == "payload_json"))
        call = {"method": route.method, "path": route.path, "payload": payload or {}}
        self.calls.append(call)
        if route.path.endswith("/callback"):
            kind = (payload or {}).get("type")
            return {"interaction": {"id": str(next(_ids)), "type": 2,
                                    "response_message_loading": kind == 5,
                                    "response_message_ephemeral": bool(((payload or {}).get("data") or {}).get("flags", 0) & 64)}}
        if route.method == "POST" and "/webhooks/" in route.path:
            return self.message_payload(payload or {})
        return None

    def message_payload(self, payload: dict) -> dict:
        return {
            "id": str(next(_ids)), "channel_id": str(self.channel_id), "type": 0,
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
            else:
                out.append("followup")
        return out

    def followups(self) -> list[dict]:
        return [c["payload"] for c in self.calls if not c["path"].endswith("/callback")]


def install(bot_user, channel_id: int) -> RecordingAdapter:
    adapter = RecordingAdapter(bot_user, channel_id)
    async_context.set(adapter)
    return adapter


def slash_interaction(bot: discord.Client, member: discord.Member, channel, name: str,
                      options: dict | None = None, permissions: int = 0) -> discord.Interaction:
    data = {
        "id": str(next(_ids)), "application_id": str(bot.user.id), "type": 2, "token": "interaction-token",
        "version": 1, "channel_id": str(channel.id), "guild_id": str(channel.guild.id),
        "attachment_size_limit": 8 * 1024 * 1024, "locale": "en-US", "app_permissions": str(2**53 - 1),
        "channel": {"id": str(channel.id), "type": 0, "guild_id": str(channel.guild.id), "name": channel.name,
                    "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None},
        "data": {"id": str(next(_ids)), "name": name, "type": 1,
                 "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]},
        "member": {"user": {"id": str(member.id), "username": member.name, "discriminator": "0000", "avatar": None},
                   "roles": [], "joined_at": datetime.now(timezone.utc).isoformat(), "deaf": False, "mute": False,
                   "permissions": str(permissions), "flags": 0},
    }
    return discord.Interaction(data=data, state=bot._connection)
