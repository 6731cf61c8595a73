"""The real `python -m bot` process: start-up failures, signals, sync, invite, export.

The process talks to `tests/fake_discord.py` (Discord's REST routes and gateway on 127.0.0.1)
and, where an answer must take a while, to `evals/fake_openai.py` as a slow LLM.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.scope import intents, invite_permissions
from bot.state import StateStore
from rag.records import Answer, Citation
from tests.fake_discord import BOT_ID, GOOD_TOKEN, GUILD_ID, FakeDiscord
from evals.fake_openai import FakeOpenAI
from tests.test_answers import MEETING_Q

ROOT = Path(__file__).resolve().parents[1]
VOICE_WORDS = ("voice", "PyNaCl", "davey")


def bot_env(tmp_path: Path, settings=None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "RAG_"))}
    env["DISCORD_STATE_FILE"] = str(tmp_path / "state.sqlite3")
    if settings is not None:
        env["RAG_SEEDS_DIR"], env["RAG_INDEX_DIR"] = str(settings.seeds_dir), str(settings.index_dir)
    env.update(extra)
    return env


def run_bot(args: list[str], env: dict, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def wait_until(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def fake_discord(tmp_path):
    server = FakeDiscord().start()
    server.site = server.sitecustomize(tmp_path / "site")
    yield server
    server.stop()


# ----- start-up failures: one line, exit 2, no voice warnings -------------------------------------
def one_line(out: subprocess.CompletedProcess) -> str:
    text = (out.stdout + out.stderr).strip()
    assert text.count("\n") == 0, f"expected one line, got:\n{text}"
    assert not any(w in text for w in VOICE_WORDS)
    return text


def test_no_token_exits_2_with_one_line(tmp_path):
    out = run_bot([], bot_env(tmp_path), tmp_path)
    assert out.returncode == 2 and "DISCORD_TOKEN" in one_line(out)


def test_a_rejected_token_exits_2_with_one_line(tmp_path, fake_discord):
    out = run_bot([], bot_env(tmp_path, DISCORD_TOKEN="bogus", PYTHONPATH=str(fake_discord.site)), tmp_path)
    assert out.returncode == 2 and "rejected DISCORD_TOKEN" in one_line(out)


def test_no_network_exits_2_with_one_line(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused, like a network that is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import discord.http\ndiscord.http.Route.BASE = 'http://127.0.0.1:{port}/api/v10'\n", encoding="utf-8")
    out = run_bot([], bot_env(tmp_path, DISCORD_TOKEN="bogus", PYTHONPATH=str(site)), tmp_path)
    assert out.returncode == 2 and "cannot reach Discord" in one_line(out)


def test_without_the_discord_extra_one_line_says_how_to_install_it(tmp_path):
    shadow = tmp_path / "shadow" / "discord"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named discord')\n", encoding="utf-8")
    env = bot_env(tmp_path, DISCORD_TOKEN="x", PYTHONPATH=str(shadow.parent))
    out = run_bot([], env, tmp_path)
    assert out.returncode == 2 and "seedrag[discord]" in one_line(out)
    assert run_bot(["--help"], env, tmp_path).returncode == 0


def test_help_describes_the_commands(tmp_path):
    out = run_bot(["--help"], bot_env(tmp_path), tmp_path)
    assert out.returncode == 0
    for word in ("sync", "invite", "export-feedback", "SIGTERM", "exit codes"):
        assert word in out.stdout


# ----- a running bot: intents, no sync at start, SIGTERM drains --------------------------------
def test_sigterm_during_an_answer_lets_it_finish_and_exits_0(tmp_path, fake_discord, workspace):
    llm = FakeOpenAI()
    llm.default = {"delay": 3.0, "content": "The VI Consultative Meeting took place on August 9, 2024 [1]."}
    llm.start()
    env = bot_env(tmp_path, workspace, DISCORD_TOKEN=GOOD_TOKEN, PYTHONPATH=str(fake_discord.site),
                  RAG_LLM_BASE_URL=llm.base_url, RAG_LLM_RETRIES="0", DISCORD_DRAIN_SECONDS="60",
                  DISCORD_COOLDOWN_SECONDS="0")
    proc = subprocess.Popen([sys.executable, "-m", "bot"], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(fake_discord.ready_sent.is_set, 60, "the bot to connect")
        asked = fake_discord.user_asks(MEETING_Q)
        wait_until(lambda: llm.requests, 60, "the answer to reach the LLM")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        late = fake_discord.user_asks("Who is the Chairman of the Mazhilis?")
        out, err = proc.communicate(timeout=60)
    finally:
        llm.stop()
        if proc.poll() is None:
            proc.kill()
        if proc.stderr and not proc.stderr.closed:
            print(proc.returncode, proc.communicate())  # the bot's log, for a failing run
    assert proc.returncode == 0, err
    replies = {str(m["message_reference"]["message_id"]): m for m in fake_discord.posted if "message_reference" in m}
    assert "August 9, 2024" in replies[asked]["content"] and replies[asked]["embeds"], "the running answer finished"
    assert "restarting" in replies[late]["content"] and replies[late]["flags"] & 4096, "a late question hears why"
    assert fake_discord.closed_by_client.is_set(), "the gateway connection was closed cleanly"
    assert fake_discord.identify["intents"] == intents().value and not intents().message_content
    assert not [r for r in fake_discord.requests if r[1].endswith("/commands")], "no command sync at start-up"
    assert not any(w in err for w in VOICE_WORDS)


# ----- maintenance commands -----------------------------------------------------------------------
def test_sync_publishes_the_commands_globally_or_to_one_server(tmp_path, fake_discord):
    env = bot_env(tmp_path, DISCORD_TOKEN=GOOD_TOKEN, PYTHONPATH=str(fake_discord.site))
    out = run_bot(["sync", "--guild", str(GUILD_ID)], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "/ask, /sources, /reindex, /help" in out.stdout or all(f"/{c}" in out.stdout for c in ("ask", "reindex"))
    puts = [r for r in fake_discord.requests if r[0] == "PUT"]
    assert [p[1] for p in puts] == [f"/applications/{BOT_ID}/guilds/{GUILD_ID}/commands"]
    reindex = next(c for c in puts[0][2] if c["name"] == "reindex")
    assert str(reindex["default_member_permissions"]) == "32" and reindex["dm_permission"] is False
    out = run_bot(["sync"], env, tmp_path)
    assert out.returncode == 0 and [r[1] for r in fake_discord.requests if r[0] == "PUT"][-1] == f"/applications/{BOT_ID}/commands"
    assert not (tmp_path / "state.sqlite3").exists(), "sync touches neither the state file nor the engine"


def test_invite_link_has_the_permissions_the_readme_names(tmp_path):
    out = run_bot(["invite"], bot_env(tmp_path, DISCORD_TOKEN=GOOD_TOKEN), tmp_path)
    assert out.returncode == 0
    perms = invite_permissions()
    assert perms.send_messages_in_threads and perms.add_reactions and not perms.administrator
    assert f"client_id={BOT_ID}" in out.stdout and f"permissions={perms.value}" in out.stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"permissions={perms.value}" in readme and f"({perms.value})" in readme


def test_export_feedback_as_jsonl_and_csv(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3").open()
    answer = Answer(question="When?", text="August 9, 2024 [1]", abstained=False, backend="extractive",
                    citations=[Citation(1, "001.txt", "Meeting", None, "…", 1.0)])
    aid = store.save_answer(answer, user_id=1, guild_id=2, channel_id=3)
    store.vote(aid, 42, "up")
    store.vote(aid, 43, "down")
    store.close()
    env = bot_env(tmp_path)
    out = run_bot(["export-feedback"], env, tmp_path)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0 and sorted(r["vote"] for r in rows) == ["down", "up"]
    assert rows[0]["question"] == "When?" and rows[0]["sources"] == ["001.txt"]
    # the user is a keyed hash, never the id (a random 32-hex hash holds "42" about one run in nine)
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["user"]) for r in rows), rows
    out = run_bot(["export-feedback", "--format", "csv", "--out", str(tmp_path / "votes.csv")], env, tmp_path)
    table = list(csv.DictReader(io.StringIO((tmp_path / "votes.csv").read_text(encoding="utf-8"))))
    assert out.returncode == 0 and len(table) == 2 and table[0]["answer"] == "August 9, 2024 [1]"
    missing = run_bot(["export-feedback"], bot_env(tmp_path / "elsewhere"), tmp_path)
    assert missing.returncode == 2 and "no state file" in missing.stderr
