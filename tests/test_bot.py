"""The Discord adapter driven through discord.py's real code paths: dpytest for messages, real
Interaction objects for slash commands. The engine is the real one over the seeds index."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import discord
import discord.ext.test as dpytest
import pytest
import pytest_asyncio

from bot import create_bot
from bot.questions import SORRY
from bot.render import split_message
from rag.records import Answer, Citation
from tests import discord_api
from tests.test_answers import MEETING_Q



class Spy:
    """Wraps the real engine to record what the bot asked it (and to fail on request)."""

    def __init__(self, engine, fail: bool = False, text: str | None = None) -> None:
        self.engine, self.fail, self.text = engine, fail, text
        self.calls: list[tuple[str, object]] = []
        self.threads: list[bool] = []

    def warm_up(self):
        self.engine.warm_up()

    def ask(self, question, history=None):
        import threading

        self.calls.append((question, history))
        self.threads.append(threading.current_thread() is threading.main_thread())
        if self.fail:
            raise RuntimeError("index exploded")
        answer = self.engine.ask(question, history)
        if self.text is not None:
            answer.text = self.text
        return answer

    def sources(self):
        return self.engine.sources()

    def ingest(self, **kw):
        return self.engine.ingest(**kw)


async def make_bot(engine, settings, members: int = 2):
    bot = create_bot(engine=engine, settings=settings)
    bot._connection._intents.members = True  # dpytest fills the member cache only with this intent
    bot._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(bot._connection._intents)
    await bot._async_setup_hook()
    dpytest.configure(bot, members=members)
    bot._connection.allowed_mentions = discord.AllowedMentions.none()  # configure() replaced the state
    dpytest.backend.get_state().loop = asyncio.get_running_loop()
    await bot.setup_hook()
    await asyncio.wait_for(bot.questions.ready.wait(), 120)
    return bot


@pytest_asyncio.fixture(loop_scope="session")
async def settings(built, tmp_path):
    return built.with_(discord_cooldown=0, feedback_file=tmp_path / "feedback.jsonl")


@pytest_asyncio.fixture(loop_scope="session")
async def spy(engine):
    return Spy(engine)


@pytest_asyncio.fixture(loop_scope="session")
async def bot(spy, settings):
    b = await make_bot(spy, settings)
    yield b
    await dpytest.empty_queue()


def mention(bot, text: str) -> str:
    return f"<@{bot.user.id}> {text}"


async def test_bot_is_created_with_no_pings_allowed(engine, settings):
    b = create_bot(engine=engine, settings=settings)
    am = b.allowed_mentions
    assert (am.everyone, am.users, am.roles, am.replied_user) == (False, False, False, False)


async def test_mention_gets_the_answer_and_a_sources_embed(bot, spy):
    await dpytest.message(mention(bot, MEETING_Q))
    reply = dpytest.get_message()
    assert "August 9, 2024" in reply.content
    assert reply.embeds and reply.embeds[0].title == "Sources"
    assert "001_693447a3f6ff537d.txt" in reply.embeds[0].fields[0].name
    assert spy.threads[-1] is False, "the engine ran in a worker thread, not on the event loop"


async def test_messages_without_a_mention_are_ignored(bot):
    await dpytest.message("When did the meeting happen?")
    assert dpytest.verify().message().nothing()


async def test_reply_to_an_answer_continues_the_conversation(bot, spy):
    await dpytest.message(mention(bot, "Who is the Chairman of the Mazhilis?"))
    answer_msg = dpytest.get_message()
    follow = await dpytest.message(mention(bot, "Which countries did he meet with?"))
    dpytest.get_message()
    follow.reference = discord.MessageReference(message_id=answer_msg.id, channel_id=answer_msg.channel.id)
    await bot.questions.on_message(follow)
    reply = dpytest.get_message()
    question, history = spy.calls[-1]
    assert question == "Which countries did he meet with?"
    assert history and history[0][0] == "Who is the Chairman of the Mazhilis?"
    assert "000_f95afc1178a02e7b.txt" in reply.embeds[0].fields[0].name


async def test_questions_asked_while_loading_wait_and_are_answered(engine, settings):
    class SlowStart(Spy):
        def warm_up(self):
            time.sleep(1.5)
            super().warm_up()

    b = create_bot(engine=SlowStart(engine), settings=settings)
    b._connection._intents.members = True
    b._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(b._connection._intents)
    await b._async_setup_hook()
    dpytest.configure(b, members=2)
    dpytest.backend.get_state().loop = asyncio.get_running_loop()
    await b.setup_hook()
    assert not b.questions.ready.is_set()
    await dpytest.message(mention(b, MEETING_Q))
    assert "August 9, 2024" in dpytest.get_message().content


async def test_abstention_still_says_which_backend_answered(bot):
    await dpytest.message(mention(bot, "Who won the 2024 European football championship?"))
    reply = dpytest.get_message()
    assert "couldn't find" in reply.content
    assert "answered by: extractive" in reply.embeds[0].footer.text


async def test_cooldown_tells_the_user_how_long_to_wait(engine, settings):
    b = await make_bot(engine, settings.with_(discord_cooldown=60))
    await dpytest.message(mention(b, MEETING_Q))
    dpytest.get_message()
    await dpytest.message(mention(b, "Who is the Chairman of the Mazhilis?"))
    assert "Please wait" in dpytest.get_message().content


async def test_channel_allowlist(engine, settings):
    b = await make_bot(engine, settings.with_(discord_channels=(123,)))
    await dpytest.message(mention(b, MEETING_Q))
    assert dpytest.verify().message().nothing()


async def test_long_answer_is_split_under_discords_limit(engine, settings):
    long_text = ("The meeting took place on August 9, 2024 [1]. " * 120).strip()
    b = await make_bot(Spy(engine, text=long_text), settings)
    await dpytest.message(mention(b, MEETING_Q))
    parts = []
    while not dpytest.sent_queue.empty():
        parts.append(dpytest.get_message())
    assert len(parts) >= 3 and all(len(p.content) <= 2000 for p in parts)
    assert "".join(p.content for p in parts).replace(" ", "") == long_text.replace(" ", "")
    assert parts[-1].embeds and not parts[0].embeds


async def test_engine_error_gives_a_polite_reply_and_the_bot_keeps_running(engine, settings, caplog):
    b = await make_bot(Spy(engine, fail=True), settings)
    await dpytest.message(mention(b, MEETING_Q))
    assert dpytest.get_message().content == SORRY
    assert "index exploded" in caplog.text
    b.questions.engine = Spy(engine)
    await dpytest.message(mention(b, MEETING_Q))
    assert "August 9, 2024" in dpytest.get_message().content


async def test_fifty_questions_at_once_all_answered_while_the_loop_stays_responsive(engine, settings):
    b = await make_bot(engine, settings.with_(discord_concurrency=2))
    config = dpytest.get_config()
    lag = 0.0
    stop = asyncio.Event()

    async def ticker():
        nonlocal lag
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lag = max(lag, time.perf_counter() - t - 0.01)

    tick = asyncio.create_task(ticker())
    questions = [MEETING_Q, "Who is Kazakhstan's ambassador to Belgium?", "What is the population of Kazakhstan?"]
    for i in range(50):
        dpytest.backend.make_message(mention(b, f"{questions[i % 3]} ({i})"), config.members[i % 2], config.channels[0])
    await dpytest.run_all_events()
    stop.set()
    await tick
    replies = []
    while not dpytest.sent_queue.empty():
        replies.append(dpytest.get_message())
    assert len(replies) == 50
    assert all(r.content for r in replies)
    assert lag < 0.25, f"event loop stalled for {lag * 1000:.0f} ms"


# ----- slash commands through real Interaction objects ------------------------------------------
async def test_slash_ask_defers_then_follows_up_with_the_embed(bot):
    config = dpytest.get_config()
    adapter = discord_api.install(bot.user, config.channels[0].id)
    inter = discord_api.slash_interaction(bot, config.members[0], config.channels[0], "ask", {"question": MEETING_Q})
    await bot.questions.ask.callback(bot.questions, inter, MEETING_Q)
    assert adapter.kinds() == ["defer", "followup"]
    follow = adapter.followups()[0]
    assert "August 9, 2024" in follow["content"]
    assert "001_693447a3f6ff537d.txt" in follow["embeds"][0]["fields"][0]["name"]
    assert follow["allowed_mentions"]["parse"] == []  # no @everyone, role or user pings
    assert follow["components"], "feedback buttons"


async def test_slash_ask_engine_error_is_ephemeral_and_polite(engine, settings):
    b = await make_bot(Spy(engine, fail=True), settings)
    config = dpytest.get_config()
    adapter = discord_api.install(b.user, config.channels[0].id)
    inter = discord_api.slash_interaction(b, config.members[0], config.channels[0], "ask", {"question": MEETING_Q})
    await b.questions.ask.callback(b.questions, inter, MEETING_Q)
    follow = adapter.followups()[0]
    assert follow["content"] == SORRY and follow["flags"] & 64


async def test_slash_sources_and_help(bot):
    config = dpytest.get_config()
    adapter = discord_api.install(bot.user, config.channels[0].id)
    inter = discord_api.slash_interaction(bot, config.members[0], config.channels[0], "sources")
    await bot.questions.sources.callback(bot.questions, inter)
    text = "".join(f["content"] for f in adapter.followups())
    assert text.count(".txt") == 5 and "002_ddc9d047bacb3bd0.txt" in text
    inter = discord_api.slash_interaction(bot, config.members[0], config.channels[0], "help")
    await bot.questions.help.callback(bot.questions, inter)
    assert "/ask" in adapter.calls[-1]["payload"]["data"]["content"]


async def test_reindex_needs_manage_server_and_keeps_answering(workspace, settings):
    from rag.engine import Engine

    engine = Engine(workspace)
    b = await make_bot(engine, settings.with_(seeds_dir=workspace.seeds_dir, index_dir=workspace.index_dir))
    config = dpytest.get_config()
    adapter = discord_api.install(b.user, config.channels[0].id)
    inter = discord_api.slash_interaction(b, config.members[0], config.channels[0], "reindex")
    await b.questions.reindex.callback(b.questions, inter)
    assert "Manage Server" in adapter.calls[-1]["payload"]["data"]["content"]
    (workspace.seeds_dir / "new.md").write_text("# Note\n\nThe Aral Sea summit met in Nukus on 3 May 2031.", encoding="utf-8")
    inter = discord_api.slash_interaction(b, config.members[0], config.channels[0], "reindex",
                                          permissions=discord.Permissions(manage_guild=True).value)
    task = asyncio.create_task(b.questions.reindex.callback(b.questions, inter))
    await dpytest.message(mention(b, MEETING_Q))  # answered from the old index meanwhile
    assert "August 9, 2024" in dpytest.get_message().content
    await task
    assert "1 added" in adapter.followups()[-1]["content"]
    await dpytest.message(mention(b, "Where did the Aral Sea summit meet?"))
    assert "Nukus" in dpytest.get_message().content


async def test_feedback_click_is_recorded(bot, settings):
    from bot.feedback import FeedbackView

    answer = Answer(question="q?", text="a [1]", abstained=False,
                    citations=[Citation(1, "001_693447a3f6ff537d.txt", "t", None, "s", 1.0)])
    view = FeedbackView(answer, settings.feedback_file)
    config = dpytest.get_config()
    adapter = discord_api.install(bot.user, config.channels[0].id)
    inter = discord_api.slash_interaction(bot, config.members[0], config.channels[0], "ask")
    await view.up.callback(inter)
    entry = json.loads(settings.feedback_file.read_text().splitlines()[-1])
    assert entry["vote"] == "up" and entry["sources"] == ["001_693447a3f6ff537d.txt"]
    assert str(config.members[0].id) not in json.dumps(entry)
    assert adapter.calls[-1]["payload"]["data"]["flags"] & 64


def test_split_message_respects_the_limit():
    parts = split_message("word " * 1000)
    assert all(len(p) <= 2000 for p in parts) and len(parts) == 3


def test_no_token_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    out = subprocess.run([sys.executable, "-m", "bot"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "DISCORD_TOKEN" in out.stderr
