"""What a user reads before running anything: --version, every --help, make help."""

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import rag
from bot.cli import _parser as bot_parser
from evals.cli import _parser as evals_parser
from rag.cli import _parser as rag_parser

ROOT = Path(__file__).resolve().parents[1]


def help_text(parser, args, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        parser().parse_args([*args, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_version_says_which_copy_runs():
    out = subprocess.run([sys.executable, "-m", "rag", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.startswith(f"rag (seedrag) {rag.__version__}\n")
    assert rag.__version__ == version("seedrag")  # the installed metadata and the code agree
    assert str(Path(rag.__file__).resolve().parent) in out.stdout
    assert "warning" not in out.stdout  # nothing else installed here claims rag, bot or evals


def test_version_warns_when_another_distribution_ships_the_same_top_level_package(tmp_path):
    info = tmp_path / "openai_evals-3.0.dist-info"  # a real-world clash: OpenAI's harness is `evals` too
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: openai-evals\nVersion: 3.0\n")
    (info / "top_level.txt").write_text("evals\n")
    (info / "RECORD").write_text("evals/__init__.py,,\n")
    out = subprocess.run([sys.executable, "-m", "rag", "--version"], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0
    assert "warning: the top-level package 'evals' is also installed by openai-evals" in out.stdout
    assert "'rag'" not in out.stdout and "'bot'" not in out.stdout


@pytest.mark.parametrize("command", ["ingest", "ask", "repl", "sources"])
def test_every_rag_command_help_names_its_settings_and_exit_codes(command, capsys):
    text = help_text(rag_parser, [command], capsys)
    assert ".env" in text and "exit codes:" in text and "RAG_SEEDS_DIR" in text
    assert re.search(r"^\s+2\s+a usage error", text, re.M)
    if command == "ask":
        assert re.search(r"QUESTION\s+the question", text)
        assert "RAG_LLM_BASE_URL" in text and "RAG_MIN_CONFIDENCE" in text
    if command == "ingest":
        assert "--rebuild" in text and "RAG_MODEL_CACHE" in text


def test_bot_help_prints_help_instead_of_starting_the_bot():
    out = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": "x" * 60})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m bot")
    assert "DISCORD_TOKEN" in out.stdout and "exit codes:" in out.stdout
    assert out.stderr == ""


SUBCOMMANDS = [(bot_parser, c) for c in ("run", "sync", "invite", "export-feedback")] + [
    (evals_parser, c) for c in ("run", "tune-fusion", "bench", "scale")]


@pytest.mark.parametrize("parser, command", SUBCOMMANDS, ids=[f"{p.__module__.split('.')[0]}-{c}" for p, c in SUBCOMMANDS])
def test_every_bot_and_evals_subcommand_says_what_it_does_its_settings_and_exit_codes(parser, command, capsys):
    text = help_text(parser, [command], capsys)
    usage, description = text.split("\n\n")[:2]
    assert not description.startswith("options:"), "the subcommand has no description"
    settings = text.split("settings read by this command:\n")[1].split("\n\n")[0]
    assert re.search(r"^  (RAG|DISCORD)_[A-Z_]+ ", settings, re.M)
    assert re.search(r"^exit codes:\n  0 .*\n(.*\n)*  2 ", text, re.M)


@pytest.mark.parametrize("tool", ["evals.grounding", "evals.llm_faults"])
def test_eval_tools_help_names_settings_and_exit_codes(tool, tmp_path):
    out = subprocess.run([sys.executable, "-m", tool, "--help"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)  # not the checkout: --help must not need tests/ or a dataset
    assert out.returncode == 0, out.stderr
    assert "RAG_SEEDS_DIR" in out.stdout and "exit codes:" in out.stdout and ".env" in out.stdout


def test_every_variable_in_env_example_is_described_by_some_help(capsys):
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    bot = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, timeout=60)
    texts = help_text(rag_parser, [], capsys) + bot.stdout
    texts += "".join(help_text(evals_parser, [c], capsys) for c in ("run", "tune-fusion", "bench"))
    described = set(re.findall(r"^\s+((?:RAG|DISCORD)_[A-Z0-9_]+)\s", texts, re.M))
    assert documented - described == set(), "add these to rag/helptext.py"
    assert described - documented == set(), "add these to .env.example"


def test_tune_fusion_help_does_not_call_rrf_the_default(capsys):
    text = help_text(evals_parser, ["tune-fusion"], capsys)
    assert "default fusion, RAG_FUSION=cc" in text
    assert "RRF weights on" not in text


def test_make_help_lists_the_targets():
    out = subprocess.run(["make", "-s", "help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0
    targets = dict(re.findall(r"^  ([a-z-]+)\s+(.+)$", out.stdout, re.M))
    assert {"run", "test", "install", "eval", "bench", "bot", "clean"} <= set(targets)
