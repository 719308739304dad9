"""The HTML report renders in headless Chromium (Debian's `chromium`, which `make test`
installs when it is missing and we are root: scripts/chromium.sh): a real browser parses the
page, finds the tables and the chart, reports no console error, and takes a screenshot that
is not blank. Skipped only where chromium could not be installed, saying why."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from reconcile.report import write_reports
from tests.unit.reconcile.report_samples import drifted_result, external_references

CHROMIUM = shutil.which("chromium")
INSTALL_FAILED = Path(__file__).parents[3] / ".venv" / "chromium-install.failed"


def _why_no_chromium() -> str:
    if INSTALL_FAILED.exists():
        return INSTALL_FAILED.read_text(encoding="utf-8").strip()
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return ("Debian's chromium is not installed, and cannot be here (scripts/chromium.sh "
                "installs it as root with apt-get)")
    return "Debian's chromium is not installed: run scripts/chromium.sh (`make test` does)"


pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=_why_no_chromium())


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--no-sandbox", "--disable-gpu", "--headless", "--window-size=1200,900",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *args],
        capture_output=True, text=True, timeout=120, check=False)


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines) of a PNG, with nothing but the standard library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_the_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    write_reports(drifted_result("20240430T120000Z"), reports)
    paths = write_reports(drifted_result(), reports)
    assert external_references(paths.html.read_text(encoding="utf-8")) == []
    url = paths.html.resolve().as_uri()

    dom = _chromium(tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for text in ("<svg", 'class="bar"', "Entities", "CartItem", "product_price", "Repair plan"):
        assert text in dom.stdout, text
    assert "CONSOLE" not in dom.stderr, dom.stderr[-2000:]

    screenshot = tmp_path / "report.png"
    shot = _chromium(tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert "CONSOLE" not in shot.stderr, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 20_000
    width, height, pixels = _png_pixels(screenshot)
    assert (width, height) == (1200, 900)
    # A blank page compresses to a handful of distinct bytes; ours has text, a table and
    # a coloured chart.
    assert len(set(pixels)) > 100
