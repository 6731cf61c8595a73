"""👍/👎 buttons under each answer; each click is one JSON line (the user id only as a hash)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path

import discord

from rag.records import Answer

log = logging.getLogger(__name__)


def record(path: Path, answer: Answer, vote: str, user_id: int) -> dict:
    entry = {
        "question": answer.question,
        "answer": answer.text,
        "sources": [c.source for c in answer.citations],
        "vote": vote,
        "user": hashlib.sha256(str(user_id).encode()).hexdigest()[:16],
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return entry


class FeedbackView(discord.ui.View):
    def __init__(self, answer: Answer, path: Path, timeout: float = 24 * 3600) -> None:
        super().__init__(timeout=timeout)
        self.answer = answer
        self.path = path

    async def _vote(self, interaction: discord.Interaction, vote: str) -> None:
        try:
            await asyncio.to_thread(record, self.path, self.answer, vote, interaction.user.id)
            await interaction.response.send_message("Thanks for the feedback.", ephemeral=True)
        except Exception:
            log.exception("could not record feedback for %r", self.answer.question[:80])
            await interaction.response.send_message("Sorry, the feedback could not be saved.", ephemeral=True)

    @discord.ui.button(emoji="👍", style=discord.ButtonStyle.secondary)
    async def up(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._vote(interaction, "up")

    @discord.ui.button(emoji="👎", style=discord.ButtonStyle.secondary)
    async def down(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._vote(interaction, "down")
