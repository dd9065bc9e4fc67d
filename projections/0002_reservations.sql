-- The reservations projection.
--
-- Each reservation event sets its own columns once (the first value stays), so the
-- row does not depend on the order or repetition of its events; the status is derived
-- from which of them happened.

CREATE TABLE reservations (
    tenant_id         text        NOT NULL,
    space_id          text        NOT NULL,
    reservation_id    text        NOT NULL,
    request_id        text,
    starts_at         timestamptz,
    ends_at           timestamptz,
    grace_s           integer,
    kind              text,
    external_ref      text,
    confirmed_at      timestamptz,
    started_at        timestamptz,
    fulfilled_at      timestamptz,
    arrived_at        timestamptz,
    no_show_at        timestamptz,
    grace_ended_at    timestamptz,
    completed_at      timestamptz,
    completion_reason text,                      -- ended | departed
    cancelled_at      timestamptz,
    cancel_reason     text,
    status            text GENERATED ALWAYS AS (
        CASE
            WHEN cancelled_at IS NOT NULL THEN 'cancelled'
            WHEN no_show_at   IS NOT NULL THEN 'no_show'
            WHEN completed_at IS NOT NULL THEN 'completed'
            WHEN fulfilled_at IS NOT NULL THEN 'fulfilled'
            WHEN started_at   IS NOT NULL THEN 'started'
            WHEN confirmed_at IS NOT NULL THEN 'confirmed'
            ELSE 'unknown'
        END
    ) STORED,
    PRIMARY KEY (tenant_id, space_id, reservation_id)
);
CREATE INDEX reservations_by_id ON reservations (tenant_id, reservation_id);
CREATE INDEX reservations_by_space_time ON reservations (tenant_id, space_id, starts_at);
CREATE INDEX reservations_by_status ON reservations (tenant_id, status, starts_at);

-- Requests the bay refused (overlap, too_long, ...): one row per rejection event. Kept
-- apart from reservations: a "duplicate_id" rejection names an existing reservation.
CREATE TABLE reservation_rejections (
    tenant_id                  text        NOT NULL,
    event_id                   text        NOT NULL,
    space_id                   text        NOT NULL,
    reservation_id             text        NOT NULL,
    request_id                 text        NOT NULL,
    reason                     text        NOT NULL,
    conflicting_reservation_id text,
    rejected_at                timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX reservation_rejections_by_space ON reservation_rejections (tenant_id, space_id, rejected_at);
CREATE INDEX reservation_rejections_by_request ON reservation_rejections (tenant_id, request_id);
