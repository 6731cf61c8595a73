"""Answer → Discord message parts and a sources embed, within every Discord limit (pure).

Discord rejects a whole message when any embed limit is exceeded: title 256, description 4096,
25 fields, field name 256, field value 1024, footer 2048, and 6,000 characters over title,
description, field names and values, footer and author together. Lengths are counted in UTF-16
code units (an emoji counts twice), which is never less than Discord's own count.
"""

from __future__ import annotations

import discord

from rag.records import Answer

MESSAGE_LIMIT = 2000
EMBED_FIELD_NAME = 256
EMBED_FIELDS = 25
EMBED_FOOTER = 2048
EMBED_TOTAL = 6000
# The fixed title and description stay far below their limits (256, 4096), and a field value
# never exceeds SNIPPET (limit 1024); the footer is clipped to its limit.
SNIPPET = 300  # per source: enough to check the claim, short enough to show several
NOTES = 600  # footer space for the answer's notes


def size(text: str) -> int:
    """Length as Discord may count it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split at paragraph, line, sentence or word boundaries so each part fits in one message."""
    text = text.strip()
    parts: list[str] = []
    while size(text) > limit:
        window = _cut(text, limit)
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < len(window) // 2:
            cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? "))
            cut = cut + 1 if cut >= len(window) // 2 else window.rfind(" ")
        if cut <= 0:
            cut = len(window)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts or ["(empty answer)"]


def _cut(text: str, limit: int) -> str:
    """The longest prefix of `text` whose size is at most `limit`."""
    used = n = 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            break
        n += 1
    return text[:n]


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if size(text) <= limit:
        return text
    return _cut(text, limit - 1).rstrip() + "…"


def sources_embed(answer: Answer) -> discord.Embed:
    embed = discord.Embed(title="Sources", colour=discord.Colour.blurple())
    if not answer.citations:
        embed.description = "None: the documents do not hold this."
    footer = f"answered by: {clip(answer.backend, 40)}"
    if answer.notes:  # the safe text only: a note's detail can name server paths and URLs
        footer += " · " + clip("; ".join(n.text for n in answer.notes), NOTES)
    more = " · {} more sources not shown"
    budget = EMBED_TOTAL - size(embed.title) - size(embed.description or "") - size(footer) - size(more) - 8
    shown = 0
    for c in answer.citations[:EMBED_FIELDS]:
        name = clip(f"[{c.n}] {c.source} — {c.title}", EMBED_FIELD_NAME)
        value = clip((f"{c.date} · " if c.date else "") + c.snippet, SNIPPET) or "—"
        if size(name) + size(value) > budget:
            break
        embed.add_field(name=name, value=value, inline=False)
        budget -= size(name) + size(value)
        shown += 1
    if shown < len(answer.citations):
        footer += more.format(len(answer.citations) - shown)
    embed.set_footer(text=clip(footer, EMBED_FOOTER))
    return embed
