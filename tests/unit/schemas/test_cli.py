"""``parkstream schemas generate|check|publish`` as a user runs them (exit codes, output)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from parkstream.cli import schemas as schemas_cli


def run(*argv: str) -> int:
    """Parse and run like ``parkstream.cli.main`` does, with only the schemas command."""
    parser = argparse.ArgumentParser(prog="parkstream")
    schemas_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


def test_generate_then_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("schemas", "generate", "--dir", str(tmp_path)) == 0
    assert f"wrote {tmp_path}/index.json" in capsys.readouterr().out

    assert run("schemas", "check", "--dir", str(tmp_path)) == 0
    assert "in step with the models" in capsys.readouterr().out


def test_check_exits_1_listing_the_drifted_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("schemas", "generate", "--dir", str(tmp_path))
    drifted = tmp_path / "space-events.v1/space.state_changed.v1.json"
    drifted.write_text(drifted.read_text().replace("FREE", "VACANT"))
    capsys.readouterr()

    assert run("schemas", "check", "--dir", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert f"{drifted}: differs from the models" in err.splitlines()


def test_publish_then_publish_again_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("schemas", "publish", "--dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert f"published {tmp_path}/published/space-events.v1/space.registered.v1.r1.json" in out

    assert run("schemas", "publish", "--dir", str(tmp_path)) == 0
    assert capsys.readouterr().out == "nothing new to publish\n"


def test_publish_refuses_when_a_published_file_was_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("schemas", "publish", "--dir", str(tmp_path))
    edited = tmp_path / "published/downlinks.v1/downlink.requested.v1.r1.json"
    edited.write_text(edited.read_text() + " ")
    capsys.readouterr()

    assert run("schemas", "publish", "--dir", str(tmp_path)) == 1
    assert "immutable" in capsys.readouterr().err
    assert run("schemas", "check", "--dir", str(tmp_path)) == 1


def test_generate_refuses_while_a_published_file_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("schemas", "publish", "--dir", str(tmp_path))
    missing = tmp_path / "published/space-events.v1/space.registered.v1.r1.json"
    missing.unlink()
    capsys.readouterr()

    assert run("schemas", "generate", "--dir", str(tmp_path)) == 1
    assert f"{missing}: published but missing" in capsys.readouterr().err
