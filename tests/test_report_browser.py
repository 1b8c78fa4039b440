"""The HTML report of ``imgscout dupes --html``, rendered by a real browser (headless Chromium).

Checking the file's text is not enough: the thumbnails are data: URIs that only a browser
decodes, and the page must show them without fetching anything. The tests load the report
from disk with networking disabled and read back what Chromium rendered.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image

from imgscout import cli
from imgscout._cli_report import THUMBNAIL_PIXELS

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "examples" / "photos"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

#: Appended to a copy of the report: after load, writes what the browser decoded into the DOM
#: (each thumbnail's natural size, and whether it came from a data: URI) for --dump-dom.
_PROBE = """
<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(Array.from(document.images).map(img => ({
    complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
    source: img.src.slice(0, 22), path: img.alt})));
  document.body.appendChild(out);
});
</script>
"""


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            # No network at all: a report that fetched anything would show broken images.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={cwd / 'chromium-profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    path = folder / "report.html"
    assert cli.main(["dupes", str(SAMPLE), "--html", str(path), "--json"]) == 0
    return path


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == 20
    assert all(src.startswith("data:image/jpeg;base64,") for src in sources)
    assert "http://" not in text
    assert "https://" not in text
    assert "<link" not in text


def test_chromium_decodes_every_thumbnail(report: Path) -> None:
    probed = report.with_name("probed.html")
    probed.write_text(report.read_text().replace("</body>", _PROBE + "</body>"))
    result = _chromium(
        "--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), cwd=report.parent
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    groups = re.findall(r'<section class="group" id="group-(\d+)" data-members="(\d+)"', dom)
    assert groups == [("1", "5"), ("2", "5"), ("3", "5"), ("4", "5")]
    assert 'data-groups="4"' in dom
    probe = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert probe is not None, "the probe script did not run"
    rows = json.loads(html.unescape(probe.group(1)))
    assert len(rows) == 20
    for row in rows:
        assert row["complete"] is True
        assert row["source"] == "data:image/jpeg;base64"
        # Really decoded, at the size of a thumbnail of that very file.
        with Image.open(row["path"]) as image:
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            assert (row["width"], row["height"]) == image.size
    for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"):
        assert name in dom
    assert "camera.jpg" not in dom


def test_chromium_marks_the_best_copy_and_shows_odd_file_names(tmp_path: Path) -> None:
    """A name that is not UTF-8 and one with a newline: the page is valid UTF-8, both
    thumbnails decode, and the first member of each group is marked as the best copy."""
    folder = tmp_path / "odd"
    folder.mkdir()
    shutil.copy(SAMPLE / "coins.jpg", bytes(folder) + b"/caf\xe9.jpg")
    with Image.open(SAMPLE / "coins.jpg") as photo:
        photo.resize((photo.width // 2, photo.height // 2)).save(folder / "small\ncopy.jpg")
    report = tmp_path / "report.html"
    assert cli.main(["dupes", str(folder), "--html", str(report), "--json"]) == 0
    probed = report.with_name("probed.html")
    probed.write_text(report.read_bytes().decode("utf-8").replace("</body>", _PROBE + "</body>"))
    result = _chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    probe = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert probe is not None, "the probe script did not run"
    rows = json.loads(html.unescape(probe.group(1)))
    assert [row["complete"] and row["width"] > 0 for row in rows] == [True, True]
    # The full-size copy is the best one and comes first; the half-size one is second.
    assert [row["path"] for row in rows] == [f"{folder}/caf\\xe9.jpg", f"{folder}/small\ncopy.jpg"]
    figures = re.findall(r"<figure>.*?</figure>", dom, re.S)
    assert len(figures) == 2
    assert 'class="best"' in figures[0] and 'class="best"' not in figures[1]
    assert "distance" in figures[1]


def _png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and a count of distinct row checksums of an 8-bit RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour_type = struct.unpack(">IIBB", data[16:26])
    assert depth == 8
    assert colour_type in (2, 6)
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride = width * (3 if colour_type == 2 else 4) + 1
    rows = {raw[k * stride + 1 : (k + 1) * stride] for k in range(height)}
    return width, height, len(rows)


def test_chromium_screenshot_shows_the_groups(report: Path) -> None:
    screenshot = report.with_name("report.png")
    result = _chromium(
        f"--screenshot={screenshot}",
        "--window-size=1400,1800",
        "--hide-scrollbars",
        report.as_uri(),
        cwd=report.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    width, height, distinct_rows = _png_size_and_colours(screenshot)
    assert (width, height) == (1400, 1800)
    # A page of photographs has many different pixel rows; a blank or broken page has few.
    assert distinct_rows > 800
