"""👍/👎 buttons under each answer that keep working after a restart.

Each button is a `discord.ui.DynamicItem` whose custom_id carries the answer id
(`rag:vote:<answer id>:<up|down>`). The class is registered once in `setup_hook`, so discord.py
routes any click on any such button, however old, to `callback`, which records the vote in the
state file: one vote per user per answer, changeable. Nothing about the answer lives in memory.
"""

from __future__ import annotations

import logging

import discord

from bot.state import UnknownAnswer

log = logging.getLogger(__name__)

EMOJI = {"up": "👍", "down": "👎"}
THANKS = {"new": "Thanks for the feedback.", "changed": "Your vote is changed.", "same": "Your vote was already counted."}


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=r"rag:vote:(?P<answer>[0-9]{1,18}):(?P<vote>up|down)"):
    def __init__(self, answer_id: int, vote: str) -> None:
        super().__init__(discord.ui.Button(emoji=EMOJI[vote], style=discord.ButtonStyle.secondary,
                                           custom_id=f"rag:vote:{answer_id}:{vote}"))
        self.answer_id = answer_id
        self.vote = vote

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match) -> VoteButton:
        return cls(int(match["answer"]), match["vote"])

    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py only logs exceptions raised here, so every path must answer the click itself.
        store = interaction.client.store
        try:
            outcome = await store.call(store.vote, self.answer_id, interaction.user.id, self.vote)
            text = THANKS[outcome]
        except UnknownAnswer:
            text = "That answer is no longer on record, so the vote could not be counted."
        except Exception:
            log.exception("could not record a vote for answer %s", self.answer_id)
            text = "Sorry, the vote could not be saved."
        try:
            await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not acknowledge a vote for answer %s", self.answer_id)


def feedback_view(answer_id: int) -> discord.ui.View:
    """The buttons for one stored answer; no timeout, nothing kept in memory per message."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    return view
