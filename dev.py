#!/usr/bin/env python3
"""The newcomer's two commands, with nothing but Python 3.11 installed:

python3 dev.py run    # venv, install, migrate, demo data, server on http://127.0.0.1:8000
python3 dev.py test   # venv, install, the whole test suite (pytest; extra args pass through)
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".requirements.sha256"
# The runtime (requirements.txt) plus tests and tools, as pinned with their hashes by
# `pip-compile --generate-hashes` (see the README's "Dependencies"): pip refuses any file
# whose hash differs from the one recorded.
REQUIREMENTS = "requirements-dev.lock"


def ensure_environment() -> None:
    if sys.version_info[:2] != (3, 11):
        print(f"Porfin targets Python 3.11; this is {sys.version.split()[0]}.", file=sys.stderr)
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / REQUIREMENTS).read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        print("Installing requirements ...", flush=True)
        pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "--require-hashes", "-r", str(ROOT / REQUIREMENTS)], check=True)
        STAMP.write_text(digest)


def manage(*args: str) -> None:
    subprocess.run([str(PYTHON), str(ROOT / "manage.py"), *args], check=True, cwd=ROOT)


def run() -> None:
    ensure_environment()
    manage("migrate", "--noinput", "-v", "0")
    manage("demo")
    manage("campaigns_demo")
    manage("assistant_demo")
    manage("appointments_demo")
    manage("flow_demo")
    # PORT=8001 python3 dev.py run: a second copy; its sandbox follows the port it serves on.
    port = os.environ.get("PORT") or "8000"
    print(f"Starting Porfin on http://127.0.0.1:{port} (Ctrl+C to stop)", flush=True)
    os.execv(str(PYTHON), [str(PYTHON), str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}"])


def test(args: list[str]) -> None:
    ensure_environment()
    os.chdir(ROOT)
    os.execv(str(PYTHON), [str(PYTHON), "-m", "pytest", *args])


def lint() -> None:
    ensure_environment()
    ruff = str(VENV / "bin" / "ruff")
    subprocess.run([ruff, "check", "."], check=True, cwd=ROOT)
    subprocess.run([ruff, "format", "--check", "."], check=True, cwd=ROOT)


if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "run":
        run()
    elif command == "test":
        test(rest)
    elif command == "lint":
        lint()
    else:
        print(__doc__)
        sys.exit(2)
