-- The registry projection: sites, bays, devices, and devices that belong to no bay.
--
-- Rows are merged, never replaced: each group of columns carries the event time that
-- last set it (registered/meta_at, archive_at, override_at, ...), and a change only wins
-- against an older one, so applying an event twice, or a batch again, changes nothing.
-- Every table holding tenant data has tenant_id first in its key and its indexes: every
-- query of the API is "WHERE tenant_id = $1 ...".

CREATE TABLE sites (
    tenant_id           text        NOT NULL,
    site_id             text        NOT NULL,
    time_zone           text        NOT NULL DEFAULT 'UTC',
    tz_at               timestamptz,             -- time of the registration that set time_zone
    first_registered_at timestamptz,
    PRIMARY KEY (tenant_id, site_id)
);

CREATE TABLE spaces (
    tenant_id       text        NOT NULL,
    space_id        text        NOT NULL,
    site_id         text,
    time_zone       text,
    registered_at   timestamptz,
    name            text,
    code            text,
    config          jsonb,
    meta_at         timestamptz,                 -- space.registered / space.updated
    archived        boolean     NOT NULL DEFAULT false,
    archive_reason  text,
    archive_at      timestamptz,                 -- space.archived / space.restored
    override_state  text,
    override_reason text,
    override_until  timestamptz,
    override_at     timestamptz,                 -- override.set / override.cleared
    display_policy  jsonb,
    policy_at       timestamptz,                 -- display.policy_set
    sensor_dev_eui  text,
    sensor_decoder  text,
    sensor_at       timestamptz,                 -- space.device_(un)assigned, role sensor
    display_dev_eui text,
    display_at      timestamptz,                 -- space.device_(un)assigned, role display
    PRIMARY KEY (tenant_id, space_id)
);
CREATE INDEX spaces_by_site ON spaces (tenant_id, site_id, code);
CREATE INDEX spaces_by_code ON spaces (tenant_id, code);

-- One row per device a tenant's bays use: assignment, last reading, liveness. Battery and
-- RSSI are not carried by the space events (they stay in device-events).
CREATE TABLE devices (
    tenant_id     text        NOT NULL,
    dev_eui       text        NOT NULL,          -- 16 lower-case hex digits
    role          text,                          -- sensor | display
    space_id      text,                          -- the bay of the last assignment
    decoder       text,
    assigned      boolean     NOT NULL DEFAULT false,
    assignment_at timestamptz,
    last_seen_at  timestamptz,                   -- last reading (accepted or ignored) or light report
    last_f_cnt    bigint,
    last_occupied boolean,
    last_reading  text,                          -- accepted, or the reason it was ignored
    liveness      text        NOT NULL DEFAULT 'unknown',  -- unknown | alive | silent
    liveness_at   timestamptz,
    silent_since  timestamptz,
    last_heard_at timestamptz,
    PRIMARY KEY (tenant_id, dev_eui)
);
CREATE INDEX devices_by_space ON devices (tenant_id, space_id);
CREATE INDEX devices_by_liveness ON devices (tenant_id, liveness, last_seen_at);

-- Devices that sent events but belong to no bay (device.orphan_seen): no tenant yet.
CREATE TABLE orphan_devices (
    dev_eui             text        PRIMARY KEY,
    first_seen_at       timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    device_profile_name text,
    application_id      text,
    device_name         text,
    last_event_type     text
);
CREATE INDEX orphan_devices_recent ON orphan_devices (last_seen_at DESC);
