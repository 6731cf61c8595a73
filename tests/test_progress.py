"""Long runs off a terminal print plain progress lines at a steady interval; reports keep their own names."""

import io
import subprocess
import sys
import time
from pathlib import Path

from evals.cli import default_report_path
from rag.progress import Progress
from tests.test_cli import run

QA = Path(__file__).resolve().parents[1] / "evals" / "seeds_qa.jsonl"


def _lines(stderr: str, prefix: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


def test_ingest_off_a_terminal_prints_plain_progress_lines(workspace):
    out = run(workspace, "ingest", "--rebuild", env_extra={"RAG_PROGRESS_SECONDS": "0.05"})
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr  # no bar redraws in a log
    lines = _lines(out.stderr, "embedding: ")
    assert lines, out.stderr
    counts = [line for line in lines if not line.startswith("embedding: done, ")]
    assert counts and all(" texts (" in line and "elapsed" in line for line in counts)
    assert lines[-1].startswith("embedding: done, ")  # chunks, then sentences: each says when it ends


def test_eval_run_off_a_terminal_prints_progress_per_question(built, tmp_path):
    cmd = [sys.executable, "-m", "evals", "run", "--dataset", str(QA), "--limit", "8", "--seeds", str(built.seeds_dir)]
    env = {"RAG_PROGRESS_SECONDS": "0.02", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
           "RAG_MODEL_CACHE": str(built.model_cache)}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert any("/8 questions (" in line for line in _lines(out.stderr, "default: ")), out.stderr
    assert (tmp_path / "reports" / "seeds_qa-all-first8.json").exists()


def test_stalled_work_is_still_reported_and_the_end_is_said():
    stream = io.StringIO()  # not a terminal
    with Progress(3, "slow step", "item", stream=stream, interval=0.01) as bar:
        for _ in range(500):  # wait (bounded) for the ticker; the count has not moved
            if stream.getvalue():
                break
            time.sleep(0.01)
        bar.update(3)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("slow step: 0/3 items (0%)")
    assert lines[-1].startswith("slow step: done, 3 items in")


def test_short_work_prints_nothing():
    stream = io.StringIO()
    with Progress(3, "quick", stream=stream, interval=60) as bar:
        bar.update(3)
    assert stream.getvalue() == ""


def test_reports_of_other_splits_and_limits_get_their_own_file():
    beir = Path("../shared/benchmarks/beir-scifact")
    paths = {default_report_path(QA, False, None, None), default_report_path(QA, False, "test", None),
             default_report_path(QA, False, "dev", None), default_report_path(QA, False, "test", 10),
             default_report_path(beir, True, None, None), default_report_path(beir, True, "train", None)}
    assert len(paths) == 6
    assert default_report_path(QA, False, "test", None) == Path("reports/seeds_qa-test.json")
    assert default_report_path(beir, True, None, None) == Path("reports/beir-scifact-test.json")
