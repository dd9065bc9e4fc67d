"""``python -m bench [NAME [options]]``: run one benchmark, or every registered one.

A benchmark is a module with ``add_arguments(parser)`` and ``run(args) -> list[Result]``;
add it to :data:`BENCHMARKS`. Without a name every benchmark runs with its defaults.
The results are printed as one table at the end, after a description of the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

from bench import api, bridge, decider, e2e, projector, refold, replay, worker
from bench.common import Result, format_machine, format_table, machine_busy, machine_info


@dataclass(frozen=True)
class Benchmark:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], list[Result]]

    @classmethod
    def of(cls, module: ModuleType, help: str) -> Benchmark:
        return cls(module.NAME, help, module.add_arguments, module.run)


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark.of(bridge, "MQTT -> Kafka bridge vs a raw aiomqtt -> orjson -> aiokafka loop"),
        Benchmark.of(projector, "projector rows/s vs a raw asyncpg COPY into the same table"),
        Benchmark.of(replay, "replay: rebuilding every projection from space-events, events/s"),
        Benchmark.of(decider, "the pure decider alone vs a trivial fold (a dict update per input)"),
        Benchmark.of(worker, "stream worker fold vs a naive Faust agent and a raw aiokafka loop"),
        Benchmark.of(refold, "parkstream refold vs a raw aiokafka consume -> fold -> produce loop"),
        Benchmark.of(
            e2e, "uplink on MQTT to its downlink on MQTT through bridge and worker vs a raw echo"
        ),
        Benchmark.of(api, "API p50/p99 at a fixed rate from another process vs a raw asyncpg app"),
    )
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run one benchmark, or every registered one with its defaults.",
    )
    sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for b in BENCHMARKS.values():
        b.add_arguments(sub.add_parser(b.name, help=b.help, description=b.help))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    chosen = [args.benchmark] if args.benchmark else list(BENCHMARKS)
    print(format_machine(machine_info()))
    busy = machine_busy()
    if busy is not None:
        print(f"     busy: {busy:.0%} of all cores before starting", end="")
        print(" (other work is running: figures will be low)" if busy > 0.15 else "")
    results: list[Result] = []
    for name in chosen:
        # Each benchmark gets its own defaults when all of them run.
        own = args if args.benchmark else p.parse_args([name])
        print(f"\n== {name} ==")
        started = time.monotonic()
        results.extend(BENCHMARKS[name].run(own))
        print(f"({name} took {time.monotonic() - started:.0f} s)")
    print()
    print(format_table(results))
    return 0  # a missed goal is reported in the table, not as a failure of the command


if __name__ == "__main__":
    sys.exit(main())
