"""``parkstream simulate`` options become a LotConfig (the MQTT broker comes from Settings)."""

from __future__ import annotations

import argparse
from datetime import time

import pytest

from parkstream.cli import simulate
from parkstream.simulate.lot import DEFAULT_APPLICATION_ID


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="parkstream")
    sub = parser.add_subparsers(dest="command", required=True)
    simulate.register(sub)
    return parser.parse_args(["simulate", *argv])


def test_the_defaults_are_a_day_lot_of_24_bays_at_a_minute_per_second() -> None:
    args = parse()
    assert args.handler is simulate.run
    config = simulate.config_from_args(args)
    assert (config.bays, config.speed, config.seed) == (24, 60.0, 1)
    assert (config.miss_rate, config.malformed_rate, config.heartbeat_minutes) == (0.05, 0.002, 60)
    assert config.duration_minutes is None
    assert config.application_id == DEFAULT_APPLICATION_ID
    assert config.silent_bay == -1


def test_every_option_reaches_the_config() -> None:
    config = simulate.config_from_args(
        parse(
            "--bays=6",
            "--speed=600",
            "--seed=42",
            "--start=08:15",
            "--duration=90",
            "--topic-prefix=t-1",
            "--application-id=app-1",
            "--miss-rate=0",
            "--malformed-rate=0.5",
            "--heartbeat=15",
            "--silent-bay=2",
        )
    )
    assert (config.bays, config.speed, config.seed, config.start) == (6, 600, 42, time(8, 15))
    assert (config.duration_minutes, config.topic_prefix, config.application_id) == (
        90,
        "t-1",
        "app-1",
    )
    assert (config.miss_rate, config.malformed_rate, config.heartbeat_minutes) == (0, 0.5, 15)
    assert config.silent_bay == 1  # bay numbers count from 1, indexes from 0


def test_silent_bay_zero_means_no_sensor_falls_silent() -> None:
    assert simulate.config_from_args(parse("--silent-bay=0")).silent_bay is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--start=25:00"],
        ["--start=8"],
        ["--bays=0"],
        ["--speed=-1"],
        ["--miss-rate=2"],
        ["--malformed-rate=x"],
        ["--duration=0"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err
