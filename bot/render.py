"""Answer → Discord message parts and a sources embed, within Discord's limits (pure)."""

from __future__ import annotations

import discord

from rag.records import Answer

MESSAGE_LIMIT = 2000
EMBED_FIELD_VALUE = 1024
EMBED_FIELD_NAME = 256
EMBED_FIELDS = 25
EMBED_TOTAL = 6000


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split at paragraph, line, sentence or word boundaries so each part fits in one message."""
    text = text.strip()
    parts: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < limit // 2:
            cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? "))
            cut = cut + 1 if cut >= limit // 2 else window.rfind(" ")
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts or ["(empty answer)"]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sources_embed(answer: Answer) -> discord.Embed:
    embed = discord.Embed(title="Sources", colour=discord.Colour.blurple())
    if not answer.citations:
        embed.description = "None: the documents do not hold this."
    used = len(embed.title)
    for c in answer.citations[:EMBED_FIELDS]:
        name = _clip(f"[{c.n}] {c.source} — {c.title}", EMBED_FIELD_NAME)
        value = _clip((f"{c.date} · " if c.date else "") + c.snippet, 300)
        if used + len(name) + len(value) > EMBED_TOTAL - 100:
            break
        embed.add_field(name=name, value=value, inline=False)
        used += len(name) + len(value)
    footer = f"answered by: {answer.backend}"
    if answer.notes:
        footer += " · " + _clip("; ".join(answer.notes), 300)
    embed.set_footer(text=footer)
    return embed
