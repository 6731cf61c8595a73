"""A small Discord on 127.0.0.1 for tests that run the real `python -m bot` process: the REST
routes the bot calls and a gateway speaking Discord's protocol (HELLO → IDENTIFY → READY →
GUILD_CREATE, heartbeats, MESSAGE_CREATE dispatches).

The bot process is pointed at it by a `sitecustomize.py` (see `sitecustomize()`) that sets
discord.py's REST base and gateway URL; nothing in the bot knows about it. Requests, the
IDENTIFY payload and messages the bot posts are recorded for the test to inspect.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import WSMsgType, web

GOOD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.fake.token"  # starts with base64("123456789012345678")
BOT_ID = 123456789012345678
GUILD_ID = 223456789012345678
CHANNEL_ID = 323456789012345678
USER_ID = 423456789012345678
_ids = itertools.count(1_500_000_000_000_000_000)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _json(data, status: int = 200) -> web.Response:
    # exactly "application/json", no charset: discord.py only decodes that content type
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def _user(uid: int, name: str, bot: bool = False) -> dict:
    return {"id": str(uid), "username": name, "discriminator": "0", "global_name": name, "avatar": None,
            "bot": bot, "flags": 0, "public_flags": 0}


class FakeDiscord:
    def __init__(self, token: str = GOOD_TOKEN) -> None:
        self.token = token
        self.requests: list[tuple[str, str, object]] = []  # (method, path, json body)
        self.identify: dict | None = None
        self.posted: list[dict] = []  # messages the bot sent
        self.closed_by_client = threading.Event()
        self.ready_sent = threading.Event()
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self) -> FakeDiscord:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def sitecustomize(self, folder: Path) -> Path:
        """Write a sitecustomize.py that points discord.py at this server; put `folder` on PYTHONPATH."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sitecustomize.py").write_text(
            "import discord.gateway, discord.http, yarl\n"
            f"discord.http.Route.BASE = 'http://127.0.0.1:{self.port}/api/v10'\n"
            f"discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL('ws://127.0.0.1:{self.port}/gateway/')\n",
            encoding="utf-8")
        return folder

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    # ----- REST ------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body and request.content_type == "application/json" else None
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body = json.loads(form["payload_json"])
        path = "/" + request.match_info["tail"]
        self.requests.append((request.method, path, body))
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        if path == "/users/@me":
            return _json(_user(BOT_ID, "seedrag", bot=True) | {"verified": True, "mfa_enabled": False})
        if path == "/oauth2/applications/@me":
            return _json({"id": str(BOT_ID), "name": "seedrag", "description": "", "icon": None,
                                      "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
                                      "owner": _user(USER_ID, "owner"), "flags": 0})
        if path.endswith("/commands") and request.method == "PUT":
            return _json([c | {"id": str(next(_ids)), "application_id": str(BOT_ID), "version": "1"}
                                      for c in body])
        if path.endswith("/typing") or "/reactions/" in path:
            return web.Response(status=204)
        if path.startswith("/channels/") and path.endswith("/messages") and request.method == "POST":
            message = self._message(int(path.split("/")[2]), _user(BOT_ID, "seedrag", bot=True), body)
            self.posted.append(message)
            return _json(message)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _message(self, channel_id: int, author: dict, body: dict) -> dict:
        return {"id": str(next(_ids)), "channel_id": str(channel_id), "guild_id": str(GUILD_ID), "author": author,
                "content": body.get("content", ""), "timestamp": _now(), "edited_timestamp": None, "tts": False,
                "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
                "embeds": body.get("embeds", []), "pinned": False, "type": 0, "flags": body.get("flags", 0),
                "components": body.get("components", [])} | (
                    {"message_reference": body["message_reference"]} if body.get("message_reference") else {})

    # ----- gateway ---------------------------------------------------------------------------
    async def _send(self, op: int, d, t: str | None = None) -> None:
        payload = {"op": op, "d": d, "s": None, "t": t}
        if op == 0:
            self._seq += 1
            payload["s"] = self._seq
        await self._ws.send_str(json.dumps(payload))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await self._send(10, {"heartbeat_interval": 41250})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if data["op"] == 1:
                await self._send(11, None)
            elif data["op"] == 2:
                self.identify = data["d"]
                await self._ready()
        self.closed_by_client.set()
        return ws

    async def _ready(self) -> None:
        me = _user(BOT_ID, "seedrag", bot=True)
        await self._send(0, {"v": 10, "user": me, "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                             "session_id": "fake-session", "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway/",
                             "application": {"id": str(BOT_ID), "flags": 0}, "shard": [0, 1]}, "READY")
        everyone = {"id": str(GUILD_ID), "name": "@everyone", "permissions": str(2**53 - 1), "position": 0,
                    "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
        channel = {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "questions", "position": 0,
                   "permission_overwrites": [], "nsfw": False, "parent_id": None, "rate_limit_per_user": 0}
        await self._send(0, {"id": str(GUILD_ID), "name": "Test Server", "icon": None, "owner_id": str(USER_ID),
                             "roles": [everyone], "emojis": [], "stickers": [], "features": [], "channels": [channel],
                             "threads": [], "members": [{"user": me, "roles": [], "joined_at": _now(), "deaf": False,
                                                         "mute": False, "flags": 0}],
                             "member_count": 2, "voice_states": [], "presences": [], "large": False,
                             "unavailable": False, "verification_level": 0, "default_message_notifications": 0,
                             "explicit_content_filter": 0, "mfa_level": 0, "system_channel_flags": 0,
                             "premium_tier": 0, "preferred_locale": "en-US", "nsfw_level": 0,
                             "joined_at": _now()}, "GUILD_CREATE")
        self.ready_sent.set()

    def user_asks(self, text: str) -> str:
        """A member mentions the bot in the channel; returns the question message's id."""
        author = _user(USER_ID, "asker")
        message = self._message(CHANNEL_ID, author, {"content": f"<@{BOT_ID}> {text}"})
        message["mentions"] = [_user(BOT_ID, "seedrag", bot=True)]
        message["member"] = {"roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0}
        asyncio.run_coroutine_threadsafe(self._send(0, message, "MESSAGE_CREATE"), self._loop).result(10)
        return message["id"]
