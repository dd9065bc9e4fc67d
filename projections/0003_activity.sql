-- The activity projection: every state change and display downlink (actuations), the
-- current state of each bay (which is also the open interval of its utilisation), and
-- the utilisation rollups kept up to date from the closed intervals.

-- Actuations are keyed by event_id (with the partition key): an event applied twice
-- inserts nothing the second time, and only newly inserted state changes move the
-- rollups. RANGE-partitioned by month of the event time; the projector creates the
-- partitions ahead (current month + N) and on demand for backfills. The DEFAULT
-- partition stays empty: events outside the sane window go to the dead-letter topic.
CREATE TABLE actuations (
    tenant_id          text        NOT NULL,
    space_id           text        NOT NULL,
    occurred_at        timestamptz NOT NULL,
    event_id           text        NOT NULL,
    type               text        NOT NULL,    -- space.state_changed | display.change_requested
                                                -- | display.change_confirmed | display.resend_scheduled
    recorded_at        timestamptz NOT NULL,
    from_state         text,
    to_state           text,
    layer              text,
    summary            text,
    explanation        jsonb,
    dev_eui            text,
    command_id         text,
    f_port             integer,
    frame_hex          text,
    for_state          text,
    attempt            integer,
    reason             text,
    evidence           text,                     -- txack | ack | status (confirmations)
    due_at             timestamptz,              -- resends
    confirmed_at       timestamptz,              -- requests: the earliest confirmation
    confirmed_evidence text,
    causation_id       text,
    correlation_id     text,
    src_partition      integer     NOT NULL,     -- where the event was read: the order of
    src_offset         bigint      NOT NULL,     -- a bay's events (ties in occurred_at)
    PRIMARY KEY (tenant_id, space_id, occurred_at, event_id)
) PARTITION BY RANGE (occurred_at);
-- CHECK (false): a row that finds no monthly partition fails its batch instead of
-- landing here (it also lets PostgreSQL skip scanning this table when a partition is added).
CREATE TABLE actuations_default PARTITION OF actuations DEFAULT;
ALTER TABLE actuations_default ADD CONSTRAINT actuations_default_stays_empty CHECK (false);
CREATE INDEX actuations_by_time ON actuations (tenant_id, occurred_at);
CREATE INDEX actuations_by_command ON actuations (tenant_id, command_id) WHERE command_id IS NOT NULL;

-- The current state of each bay with its explanation and display. (state, since) is the
-- open interval of the utilisation rollups: when the next state change arrives, the
-- seconds from since to its time are added to the hour and site-day buckets.
CREATE TABLE space_states (
    tenant_id            text        NOT NULL,
    space_id             text        NOT NULL,
    site_id              text,
    time_zone            text        NOT NULL DEFAULT 'UTC',
    state                text,
    since                timestamptz,
    event_id             text,                   -- the state change that set state
    layer                text,
    summary              text,
    explanation          jsonb,
    reservation_id       text,
    next_change_at       timestamptz,
    next_change_reason   text,
    next_state           text,
    display_dev_eui      text,
    desired_frame        text,
    desired_for_state    text,
    desired_command_id   text,
    desired_attempt      integer,
    desired_at           timestamptz,
    confirmed_frame      text,
    confirmed_command_id text,
    confirmed_evidence   text,
    confirmed_at         timestamptz,
    PRIMARY KEY (tenant_id, space_id)
);
CREATE INDEX space_states_by_state ON space_states (tenant_id, state);
CREATE INDEX space_states_by_site ON space_states (tenant_id, site_id, state);

-- Seconds per state class in each UTC hour, per bay. FREE and RESERVED_SOON count as
-- free; OUT_OF_ORDER, MAINTENANCE and BLOCKED as unavailable; ARCHIVED counts nowhere.
-- Arrivals: changes into OCCUPIED; departures: changes out of it.
CREATE TABLE utilization_hourly (
    tenant_id     text          NOT NULL,
    space_id      text          NOT NULL,
    hour          timestamptz   NOT NULL,
    free_s        numeric(12,6) NOT NULL DEFAULT 0,
    occupied_s    numeric(12,6) NOT NULL DEFAULT 0,
    reserved_s    numeric(12,6) NOT NULL DEFAULT 0,
    unknown_s     numeric(12,6) NOT NULL DEFAULT 0,
    unavailable_s numeric(12,6) NOT NULL DEFAULT 0,
    arrivals      integer       NOT NULL DEFAULT 0,
    departures    integer       NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, space_id, hour)
);
CREATE INDEX utilization_hourly_by_hour ON utilization_hourly (tenant_id, hour);

-- The same per site and local day (the site's time zone: a DST day has 23 or 25 hours).
CREATE TABLE utilization_daily (
    tenant_id     text          NOT NULL,
    site_id       text          NOT NULL,
    day           date          NOT NULL,
    free_s        numeric(18,6) NOT NULL DEFAULT 0,
    occupied_s    numeric(18,6) NOT NULL DEFAULT 0,
    reserved_s    numeric(18,6) NOT NULL DEFAULT 0,
    unknown_s     numeric(18,6) NOT NULL DEFAULT 0,
    unavailable_s numeric(18,6) NOT NULL DEFAULT 0,
    arrivals      integer       NOT NULL DEFAULT 0,
    departures    integer       NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, site_id, day)
);
CREATE INDEX utilization_daily_by_day ON utilization_daily (tenant_id, day);
