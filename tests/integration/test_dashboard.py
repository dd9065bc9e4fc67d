"""The dashboard in a real browser: headless Chromium opens it on a running `parkstream dev`
and shows every bay of the read model, coloured as its light."""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from parkstream.api.dashboard import light_of
from parkstream.domain.display import DEFAULT_POLICY
from parkstream.domain.states import SpaceState

BAYS = 12
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# --- running `parkstream dev` ------------------------------------------------------------------


def start_dev(log: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkstream", "dev", "--bays", str(BAYS), "--speed", "20"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def dashboard_url(process: subprocess.Popen[str], log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"dashboard: (http://\S+/dashboard#key=psk_\S+)", log.read_text())
        if found:
            return found[1]
        assert process.poll() is None, f"parkstream dev exited early:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"no dashboard URL within {timeout}s:\n{log.read_text()[-3000:]}")


def read_model(url: str) -> list[dict[str, Any]]:
    base, key = url.split("/dashboard#key=")
    response = httpx.get(f"{base}/dashboard/bays", headers={"X-API-Key": key}, timeout=10)
    response.raise_for_status()
    bays: list[dict[str, Any]] = response.json()["bays"]
    return bays


def lit_and_settled(bays: list[dict[str, Any]]) -> bool:
    """Every bay has a state and a light that confirmed its colour."""
    return len(bays) == BAYS and all(
        b["state"] and b["light"]["shows"] and not b["light"]["pending"] for b in bays
    )


# --- the browser ------------------------------------------------------------------------------


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    flags = [
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=5000",
    ]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, timeout=90, check=True)


class Bays(HTMLParser):
    """The bay cells of a dumped DOM: their data-* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "button" and "bay" in found.get("class", "").split():
            self.cells[found["data-space-id"]] = found


def expected_cells(bays: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        b["space_id"]: {
            "state": b["state"],
            "colour": b["light"]["shows"]["colour"],
            "pending": "true" if b["light"]["pending"] else "false",
        }
        for b in bays
    }


def drawn_cells(html: str) -> dict[str, dict[str, str]]:
    parser = Bays()
    parser.feed(html)
    return {
        space_id: {
            "state": cell["data-state"],
            "colour": cell["data-colour"],
            "pending": cell["data-pending"],
        }
        for space_id, cell in parser.cells.items()
    }


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8, header
    assert colour_type in (2, 6), header
    assert interlace == 0, header
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + guess) & 0xFF
        pixels.extend((line[x], line[x + 1], line[x + 2]) for x in range(0, stride, channels))
        previous = line
    return width, height, pixels


# --- the test --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (SpaceState.FREE, {"colour": "#00ff00", "blink": False}),
        (SpaceState.OCCUPIED, {"colour": "#ff0000", "blink": False}),
        (SpaceState.RESERVED, {"colour": "#ff3200", "blink": False}),
        (SpaceState.RESERVED_SOON, {"colour": "#ffff00", "blink": True}),
        (SpaceState.MAINTENANCE, {"colour": "#0000ff", "blink": False}),
        (SpaceState.ARCHIVED, {"colour": "#000000", "blink": False}),
    ],
)
def test_a_bay_is_drawn_in_the_colour_its_kuando_frame_shows(
    state: SpaceState, shown: dict[str, object]
) -> None:
    # Kuando frames are [R, B, G, on, off]: blue comes before green.
    assert light_of(DEFAULT_POLICY.frame_for(state).hex) == shown


def test_a_frame_that_is_no_colour_frame_draws_no_colour() -> None:
    assert light_of(None) is None
    assert light_of("00ff") is None
    assert light_of("zz00ff0000") is None


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
def test_dashboard_shows_every_bay_coloured_as_its_light(tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    process = start_dev(log)
    try:
        url = dashboard_url(process, log)
        deadline = time.monotonic() + 150
        while not lit_and_settled(read_model(url)):
            assert time.monotonic() < deadline, f"bays never settled: {read_model(url)}"
            time.sleep(1)

        # The DOM the page builds equals the read model (read before and after the dump,
        # and compared only when nothing changed in between: the lot keeps moving).
        for _ in range(10):
            before = read_model(url)
            dom = chromium(tmp_path, "--dump-dom", url).stdout.decode()
            after = read_model(url)
            if expected_cells(before) == expected_cells(after):
                break
        else:
            pytest.fail("the lot never stood still for a DOM dump")
        assert drawn_cells(dom) == expected_cells(before)

        # The screenshot shows them: at least a bay's area of each light colour per bay.
        shot = tmp_path / "dashboard.png"
        chromium(tmp_path, "--window-size=1280,900", f"--screenshot={shot}", url)
        width, height, pixels = png_pixels(shot.read_bytes())
        assert (width, height) == (1280, 900)
        assert len(set(pixels)) > 50, "a blank page"
        seen = Counter(pixels)
        colours = Counter(
            b["light"]["shows"]["colour"] for b in after if not b["light"]["shows"]["blink"]
        )
        for colour, bays in colours.items():
            rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
            assert seen[rgb] >= bays * 2500, (colour, bays, seen[rgb])
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(90) == 0, log.read_text()[-3000:]
        finally:
            if process.poll() is None:
                process.kill()
