"""``parkstream display encode``: one JSON line per frame, one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parkstream.cli import main


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkstream", "display", "encode", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def encode(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["display", "encode", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result: dict[str, object] = json.loads(out)
    return result


# --- as a user runs it ------------------------------------------------------------------


def test_green_is_the_frame_r_b_g_on_off_as_json() -> None:
    done = run_process("--color", "00FF00")

    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"f_port": 15, "hex": "0000ffff00", "base64": "AAD//wA="}\n'
    assert done.stderr == ""


def test_an_on_time_above_255_exits_2_with_one_line_on_stderr() -> None:
    done = run_process("--color", "00FF00", "--on", "300")

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "parkstream display encode: error: on must be 0..255, got 300\n"


def test_a_colour_that_is_not_hex_exits_2_with_one_line_on_stderr() -> None:
    done = run_process("--color", "GG0000")

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "colour must be 6 hex digits RRGGBB, got 'GG0000'" in done.stderr


# --- in process -------------------------------------------------------------------------


def test_blue_goes_before_green_in_the_frame(capsys: pytest.CaptureFixture[str]) -> None:
    assert encode(capsys, "--color", "0000FF") == {
        "f_port": 15,
        "hex": "00ff00ff00",
        "base64": "AP8A/wA=",
    }


def test_on_and_off_times_make_a_blinking_frame(capsys: pytest.CaptureFixture[str]) -> None:
    assert encode(capsys, "--color", "#ff3200", "--on", "10", "--off", "5")["hex"] == "ff00320a05"


@pytest.mark.parametrize(
    ("args", "hex_"),
    [
        (["--keepalive-minutes", "30"], "041e"),
        (["--status-request"], "0500"),
        (["--adr", "on"], "0100"),
        (["--adr", "off"], "0200"),
        (["--auto-uplink", "on"], "0601"),
        (["--auto-uplink", "off"], "0600"),
        (["--watchdog-uplinks", "12"], "030c"),
        (["--off-light"], "0000000000"),
    ],
)
def test_each_command_frame(capsys: pytest.CaptureFixture[str], args: list[str], hex_: str) -> None:
    result = encode(capsys, *args)

    assert result["hex"] == hex_
    assert result["f_port"] == 15


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--color", "GG0000"], "colour must be 6 hex digits RRGGBB"),
        (["--color", "00FF00", "--off", "-1"], "off must be 0..255, got -1"),
        (["--keepalive-minutes", "0"], "keep-alive interval must be 1..255 minutes"),
        (["--watchdog-uplinks", "256"], "watchdog must be 1..255 uplinks"),
        (["--status-request", "--on", "5"], "--on and --off apply only to --color"),
        ([], "one of the arguments --color/--colour"),
        (["--status-request", "--off-light"], "not allowed with argument --status-request"),
        (["--color", "00FF00", "--on", "ten"], "argument --on: invalid int value: 'ten'"),
        (["--adr", "maybe"], "argument --adr: invalid choice: 'maybe'"),
    ],
)
def test_invalid_input_exits_2_with_one_line_naming_the_problem(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    try:
        status = main(["display", "encode", *args])
    except SystemExit as exc:  # argparse's own usage errors leave through SystemExit
        status = exc.code  # type: ignore[assignment]

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("parkstream display encode: error: ")
    assert message in captured.err
