"""Both shipped binaries count bits with the POPCNT instruction.

A default x86-64 build counts bits in software, 2-4x slower on every scan; .cargo/config.toml
sets the x86-64-v2 baseline, and pip (maturin), CI and the Dockerfile all build through it.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import pytest

import imgscout._core

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"), reason="POPCNT is an x86-64 instruction"
)


def popcnt_instructions(library: Path) -> int:
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(library)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(1 for line in listing.splitlines() if "\tpopcnt " in line)


def test_redis_module_uses_popcnt(module_path: Path) -> None:
    assert popcnt_instructions(module_path) > 0


def test_python_extension_uses_popcnt() -> None:
    assert popcnt_instructions(Path(imgscout._core.__file__)) > 0
