"""A screenshot of the report with headless Chromium (the report test and ``--screenshot``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The first Chromium or Chrome binary on the PATH (``CORPUSLAKE_CHROMIUM`` names one explicitly)."""
    explicit = os.environ.get("CORPUSLAKE_CHROMIUM")
    if explicit:
        return shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html_path: str | Path, png_path: str | Path, width: int = 1400, height: int = 2000, timeout_s: float = 120
) -> Path:
    """Render ``html_path`` with headless Chromium and save the top ``width`` × ``height`` pixels as PNG.

    Raises:
        RuntimeError: no Chromium binary is found (install the Debian package ``chromium``), it failed or
            timed out, or it wrote no image.
    """
    binary = find_chromium()
    if binary is None:
        raise RuntimeError(
            "no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + "): install the Debian package "
            "`chromium` (apt-get install chromium) or set CORPUSLAKE_CHROMIUM"
        )
    src = Path(html_path).resolve()
    if not src.is_file():
        raise RuntimeError(f"no such report: {src}")
    png = Path(png_path).expanduser().resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.name}.tmp.png")
    with tempfile.TemporaryDirectory(prefix="corpuslake-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={tmp}",
            src.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{binary} did not finish the screenshot within {timeout_s:g} s") from exc
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        raise RuntimeError(f"{binary} exited {proc.returncode} without a screenshot: {' | '.join(tail)}")
    os.replace(tmp, png)
    return png
