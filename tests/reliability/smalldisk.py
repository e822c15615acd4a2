"""A small filesystem to fill up: a size-limited tmpfs when this process may mount one, else a
loop-mounted ext4 image, else the test is skipped with the reasons. Always unmounted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*argv: str) -> str | None:
    """Run a system tool; None when it worked, else its one-line complaint."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} is not installed"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return None if done.returncode == 0 else f"{' '.join(argv[:3])}: {(done.stderr or done.stdout).strip()}"


def _tmpfs(mountpoint: Path, size_mb: int) -> str | None:
    return _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mountpoint))


def _loop_ext4(mountpoint: Path, size_mb: int) -> str | None:
    image = mountpoint.with_name(mountpoint.name + ".img")
    with image.open("wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    return _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image)) or _run(
        "mount", "-o", "loop", str(image), str(mountpoint)
    )


@contextlib.contextmanager
def small_disk(mountpoint: Path, size_mb: int = 8) -> Iterator[str]:
    """Mount a ``size_mb`` filesystem at ``mountpoint``; yields how ("tmpfs" or "loop ext4")."""
    if os.geteuid() != 0:
        pytest.skip("no small filesystem to fill: mounting one needs root (CAP_SYS_ADMIN)")
    mountpoint.mkdir(parents=True, exist_ok=True)
    problems = []
    for how, mount in (("tmpfs", _tmpfs), ("loop ext4", _loop_ext4)):
        problem = mount(mountpoint, size_mb)
        if problem is None:
            break
        problems.append(f"{how}: {problem}")
    else:
        pytest.skip(f"no small filesystem to fill: {'; '.join(problems)}")
    try:
        yield how
    finally:
        if _run("umount", str(mountpoint)) is not None:
            _run("umount", "-l", str(mountpoint))  # something still holds it open: detach it anyway


def fill_to(folder: Path, free_bytes: int, name: str = "ballast") -> int:
    """Grow (or shrink) a ballast file in ``folder`` until about ``free_bytes`` are left; the free bytes then."""
    ballast = folder / name
    have = ballast.stat().st_size if ballast.exists() else 0
    size = max(0, have + shutil.disk_usage(folder).free - free_bytes)
    with ballast.open("r+b" if ballast.exists() else "wb") as f:
        f.truncate(0)
        f.write(b"\0" * size)  # written, not a sparse truncate: the blocks are really taken
        f.flush()
        os.fsync(f.fileno())
    return shutil.disk_usage(folder).free
