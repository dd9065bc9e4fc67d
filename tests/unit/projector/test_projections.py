"""The registry and reservations projections: what each event changes."""

from __future__ import annotations

from datetime import timedelta

import orjson

from parkstream.domain.states import SpaceState
from parkstream.projector import registry, reservations
from parkstream.projector.records import Incoming, read_event

from .helpers import read
from .lot import Lot

H = timedelta(hours=1)


def rows(changes: object, spec: object) -> list[dict[str, object]]:
    rowset = changes.of(spec)  # type: ignore[attr-defined]
    return [dict(zip(spec.names, row, strict=True)) for row in rowset]  # type: ignore[attr-defined]


def test_a_registered_bay_with_devices() -> None:
    lot = Lot()
    lot.add_bay("bay-1", site="north", time_zone="Europe/Amsterdam")
    changes = registry.project(read(lot.events))
    (site,) = rows(changes, registry.SITES)
    assert site["site_id"] == "north"
    assert site["time_zone"] == "Europe/Amsterdam"
    (space,) = rows(changes, registry.SPACES)
    assert space["sensor_dev_eui"] == lot.bays["bay-1"].sensor
    assert space["display_dev_eui"] == lot.bays["bay-1"].light
    assert space["code"] == "B1"
    assert space["archived"] is None
    devices = {d["dev_eui"]: d for d in rows(changes, registry.DEVICES)}
    sensor = devices[lot.bays["bay-1"].sensor]
    assert sensor["assigned"] is True
    assert sensor["role"] == "sensor"
    assert sensor["last_reading"] == "accepted"
    assert sensor["liveness"] == "alive"


def test_a_replaced_sensor_is_unassigned() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    lot.advance(hours=1)
    lot.command("bay-1", *_assign("ab00000000000001"))
    devices = {d["dev_eui"]: d for d in rows(registry.project(read(lot.events)), registry.DEVICES)}
    assert devices[lot.bays["bay-1"].sensor]["assigned"] is False
    assert devices["ab00000000000001"]["assigned"] is True


def _assign(eui: str) -> tuple[type, object]:
    from parkstream.domain import commands as cmd

    return cmd.AssignDevice, cmd.AssignDeviceData(dev_eui=eui, role="sensor")


def test_silence_and_recovery() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    lot.advance(hours=4).tick("bay-1")  # 3 x the 1 h heartbeat: silent
    silent = {d["dev_eui"]: d for d in rows(registry.project(read(lot.events)), registry.DEVICES)}
    assert silent[lot.bays["bay-1"].sensor]["liveness"] == "silent"
    lot.advance(minutes=5).reading("bay-1", True)
    back = {d["dev_eui"]: d for d in rows(registry.project(read(lot.events)), registry.DEVICES)}
    assert back[lot.bays["bay-1"].sensor]["liveness"] == "alive"
    assert back[lot.bays["bay-1"].sensor]["silent_since"] is None


def test_overrides_set_and_clear() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    lot.override("bay-1", SpaceState.MAINTENANCE)
    (space,) = rows(registry.project(read(lot.events)), registry.SPACES)
    assert space["override_state"] == "MAINTENANCE"
    lot.advance(hours=2).tick("bay-1")  # expired
    (space,) = rows(registry.project(read(lot.events)), registry.SPACES)
    assert space["override_state"] is None
    assert space["override_at"] is not None


def test_an_orphan_device_has_no_tenant() -> None:
    lot = Lot()
    lot.orphan("ffff000000000001")
    lot.advance(hours=1).orphan("ffff000000000001")
    (orphan,) = rows(registry.project(read(lot.events)), registry.ORPHAN_DEVICES)
    assert orphan["first_seen_at"] < orphan["last_seen_at"]


def test_a_reservation_through_its_life_and_a_rejection() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    lot.reserve("bay-1", "r1", H, H)
    lot.reserve("bay-1", "r2", H, H)  # overlaps r1
    lot.advance(hours=1, minutes=5).reading("bay-1", True)  # arrives
    lot.advance(hours=1).tick("bay-1")
    changes = reservations.project(read(lot.events))
    (r1,) = rows(changes, reservations.RESERVATIONS)
    assert r1["reservation_id"] == "r1"
    assert r1["confirmed_at"] is not None
    assert r1["started_at"] is not None
    assert r1["fulfilled_at"] is not None
    assert r1["completed_at"] is not None
    assert r1["completion_reason"] == "ended"
    (rejection,) = rows(changes, reservations.REJECTIONS)
    assert rejection["reason"] == "overlap"
    assert rejection["conflicting_reservation_id"] == "r1"


def test_a_reservation_event_repeated_late_changes_nothing() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    lot.reserve("bay-1", "r1", H, H)
    lot.cancel("bay-1", "r1")
    events = read(lot.events)
    confirmed = next(e for e in events if e.type == "reservation.confirmed")
    once = rows(reservations.project(events), reservations.RESERVATIONS)
    twice = rows(reservations.project([*events, confirmed]), reservations.RESERVATIONS)
    assert once == twice
    assert once[0]["cancelled_at"] is not None


def test_an_event_with_a_bad_field_is_rejected_alone() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    raw = [orjson.loads(orjson.dumps(e.model_dump(mode="json"))) for e in lot.events]
    raw[0]["data"]["config"] = "not an object"
    events = [read_event(Incoming(0, n, None, orjson.dumps(r))) for n, r in enumerate(raw)]
    changes = registry.project(events)
    assert list(changes.rejected) == [(0, 0)]
    assert rows(changes, registry.SITES) == []  # the registration changed nothing
    assert len(rows(changes, registry.DEVICES)) == 2
