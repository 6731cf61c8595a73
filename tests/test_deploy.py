"""The deploy files agree with each other and with the scripts CI runs (deploy/check.sh runs them).

CI has no container runtime, so the image is never built there; what keeps the Dockerfile honest
is that every step it runs is a script deploy/check.sh also runs, in a clean venv.
"""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_every_script_the_dockerfile_runs_is_run_by_the_ci_check():
    dockerfile = _dockerfile()
    scripts = set(re.findall(r"\b(deploy/[\w-]+\.sh)\b", " ".join(re.findall(r"^(?:RUN|ENTRYPOINT) .*$", dockerfile, re.M))))
    assert scripts == {"deploy/install.sh", "deploy/bake-model.sh", "deploy/start.sh"}
    check = (ROOT / "deploy" / "check.sh").read_text()
    for script in scripts:
        assert re.search(rf"^[^#\n]*{re.escape(script)}", check, re.M), f"deploy/check.sh never runs {script}"
    assert "deploy/check.sh" in (ROOT / ".ci" / "run").read_text()


def test_image_runs_as_a_non_root_user_with_state_on_a_volume():
    dockerfile = _dockerfile()
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert 'VOLUME ["/data"]' in dockerfile


def _start(tmp_path, *args: str, **env: str) -> dict[str, str]:
    """Run deploy/start.sh with stand-ins for `rag`/`rag-bot` that print what they were started with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("rag", "rag-bot"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "PROGRAM={name}"\necho "ARGS=$*"\nenv\n')
        (bin_dir / name).chmod(0o755)
    out = subprocess.run([str(ROOT / "deploy" / "start.sh"), *args], capture_output=True, text=True, timeout=60,
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env})
    assert out.returncode == 0, out.stderr
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def test_the_entry_point_keeps_state_on_the_volume_and_passes_commands_through(tmp_path):
    seen = _start(tmp_path)  # the image's default command
    assert seen["PROGRAM"] == "rag-bot"
    assert (seen["RAG_INDEX_DIR"], seen["DISCORD_STATE_FILE"]) == ("/data/index", "/data/bot_state.sqlite3")
    assert (seen["RAG_SEEDS_DIR"], seen["RAG_MODEL_CACHE"], seen["HF_HUB_OFFLINE"]) == ("/seeds", "/opt/seedrag/models", "1")
    seen = _start(tmp_path, "ask", "When did it happen?", SEEDRAG_DATA="/srv/state", RAG_SEEDS_DIR="/docs")
    assert (seen["PROGRAM"], seen["ARGS"]) == ("rag", "ask When did it happen?")
    assert (seen["RAG_INDEX_DIR"], seen["RAG_SEEDS_DIR"]) == ("/srv/state/index", "/docs")


def test_compose_runs_a_one_shot_ingest_then_the_bot_on_the_same_volume():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    ingest, bot = compose["services"]["ingest"], compose["services"]["bot"]
    assert ingest["command"] == ["ingest"] and ingest["restart"] == "no"
    assert bot["command"] == ["bot"]
    assert bot["depends_on"]["ingest"]["condition"] == "service_completed_successfully"
    for service in (ingest, bot):
        assert "seedrag-data:/data" in service["volumes"]
        assert service["environment"]["RAG_INDEX_DIR"] == "/data/index"  # not the host's relative .env value
        assert service["environment"]["RAG_SEEDS_DIR"] == "/seeds"


def test_postgres_variant_builds_the_extra_and_points_both_services_at_the_database():
    over = yaml.safe_load((ROOT / "deploy" / "compose.postgres.yaml").read_text())["services"]
    assert "ARG SEEDRAG_EXTRAS=discord" in _dockerfile() and '"$SEEDRAG_EXTRAS"' in _dockerfile()
    for name in ("ingest", "bot"):
        # both: they share one image tag, so a bot built without the extra would have no driver
        assert "postgres" in over[name]["build"]["args"]["SEEDRAG_EXTRAS"].split(",")
        assert over[name]["environment"]["RAG_STORE_URL"].startswith("postgresql://seedrag:${POSTGRES_PASSWORD}@postgres:")
        assert over[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_cpu_only_check_refuses_a_cuda_environment(tmp_path):
    info = tmp_path / "nvidia_cublas-13.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nvidia-cublas\nVersion: 13.0\n")
    out = subprocess.run([sys.executable, str(ROOT / "deploy" / "check_cpu_only.py")], capture_output=True,
                         text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert out.returncode == 1
    assert "not CPU-only" in out.stderr and "nvidia-cublas" in out.stderr
    ok = subprocess.run([sys.executable, str(ROOT / "deploy" / "check_cpu_only.py")], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr  # this environment itself is CPU-only
