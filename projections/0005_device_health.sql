-- The device_health projection (from device-events): the radio and battery of every
-- device the network server reported on.
--
-- Device events carry no tenant: the row is keyed by dev_eui alone and read joined with
-- the devices a tenant's bays use (devices.dev_eui), so it is right whether the health or
-- the assignment arrives first, and stays with the device when it moves to another bay:
--
--   SELECT d.dev_eui, d.role, d.space_id, d.liveness, h.battery_pct, h.rssi, h.snr,
--          h.last_uplink_at, h.f_cnt, h.gateway_count
--   FROM devices d LEFT JOIN device_health h USING (dev_eui)
--   WHERE d.tenant_id = $1 ORDER BY d.dev_eui;
--
-- As in the registry, each group of columns carries the event time that last set it
-- (last_uplink_at, battery_at, battery_v_at, status_at) and only a newer event replaces
-- it, so applying an event twice, or a batch again, changes nothing.
CREATE TABLE device_health (
    dev_eui                   text        PRIMARY KEY,  -- 16 lower-case hex digits
    first_seen_at             timestamptz,              -- earliest uplink, join or status
    last_seen_at              timestamptz,              -- latest of them
    -- the latest uplink (device.uplink_observed)
    last_uplink_at            timestamptz,
    f_cnt                     bigint,
    f_port                    integer,
    dr                        integer,
    rssi                      integer,                  -- dBm, the best gateway's
    snr                       double precision,         -- dB, the best gateway's
    gateway_count             integer,                  -- gateways that heard it
    gateway_ids               text[],
    frequency                 bigint,                   -- Hz
    spreading_factor          integer,
    decode_error              text,                     -- why its payload was not decoded
    -- the latest battery percentage: a decoded uplink, or the answer to DevStatusReq
    battery_pct               double precision,
    battery_source            text,                     -- uplink | status
    battery_at                timestamptz,
    -- the latest battery voltage decoded from an uplink
    battery_v                 double precision,
    battery_v_at              timestamptz,
    -- the latest answer to DevStatusReq (device.status_reported)
    margin                    integer,                  -- dB, link margin of the last uplink
    external_power_source     boolean,
    battery_level_unavailable boolean,
    status_at                 timestamptz,
    last_joined_at            timestamptz               -- latest device.joined
);
CREATE INDEX device_health_by_uplink ON device_health (last_uplink_at);
