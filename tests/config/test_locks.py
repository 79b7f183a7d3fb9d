"""The hashed lock files (what the Dockerfile and ``dev.py`` install) pin every package the
``.txt`` files name, at the same version, each with its hashes; the runtime lock has no test
tools."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;#\\]+)", re.M)


def pins(path: Path) -> dict[str, str]:
    return {
        name.lower().replace("_", "-"): version for name, version in PIN.findall(path.read_text())
    }


def test_each_lock_pins_what_its_requirements_name_with_hashes():
    runtime, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    runtime_lock = pins(ROOT / "requirements.lock")
    dev_lock = pins(ROOT / "requirements-dev.lock")
    stale = {n: v for n, v in runtime.items() if runtime_lock.get(n) != v}
    assert not stale, f"requirements.lock is stale (run pip-compile, README): {stale}"
    stale = {n: v for n, v in {**runtime, **dev}.items() if dev_lock.get(n) != v}
    assert not stale, f"requirements-dev.lock is stale (run pip-compile, README): {stale}"
    for tool in ("pytest", "playwright", "ruff", "daphne", "schemathesis", "moto"):
        assert tool not in runtime_lock, f"{tool} would be installed in production"
    for lock in ("requirements.lock", "requirements-dev.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text().split("\n\n", 1)[-1])
        for entry in entries:
            if "==" in entry:
                assert "--hash=sha256:" in entry, f"{lock}: {entry.splitlines()[0]} has no hash"
