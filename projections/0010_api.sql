-- What the API owns rather than derives from events: tenants, their API keys, their
-- sites, idempotency keys of requests, and dismissed orphan devices. These tables are
-- configuration and request bookkeeping, not projections: a replay leaves them alone.

CREATE TABLE tenants (
    tenant_id               text        PRIMARY KEY,
    name                    text        NOT NULL,
    -- ChirpStack applications whose unassigned devices this tenant may see and claim.
    chirpstack_applications text[]      NOT NULL DEFAULT '{}',
    -- The display policy the tenant last set (sent to each of its bays as a command).
    display_policy          jsonb,
    created_at              timestamptz NOT NULL DEFAULT now()
);

-- A key is "psk_<key_id>_<secret>": key_id finds the row, the secret is only ever
-- stored as its SHA-256 (a 256-bit random secret needs no slow hash).
CREATE TABLE api_keys (
    key_id        text        PRIMARY KEY,
    tenant_id     text        NOT NULL REFERENCES tenants (tenant_id),
    name          text        NOT NULL DEFAULT '',
    secret_sha256 bytea       NOT NULL,
    scopes        text[]      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

-- Sites as the tenant declares them (the spaces registered at a site carry its time zone).
CREATE TABLE tenant_sites (
    tenant_id  text        NOT NULL REFERENCES tenants (tenant_id),
    site_id    text        NOT NULL,
    name       text        NOT NULL,
    time_zone  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, site_id)
);

-- Idempotency-Key of write requests: the same key with another body is refused.
CREATE TABLE idempotency_keys (
    tenant_id    text        NOT NULL,
    key          text        NOT NULL,
    route        text        NOT NULL,
    request_hash bytea       NOT NULL,
    resource_id  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE orphan_dismissals (
    tenant_id    text        NOT NULL,
    dev_eui      text        NOT NULL,
    dismissed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, dev_eui)
);

-- A bay's code is unique within its site: claimed here before the register or update
-- command is sent, so two concurrent requests cannot both take it.
CREATE TABLE space_codes (
    tenant_id  text NOT NULL,
    site_id    text NOT NULL,
    code       text NOT NULL,
    space_id   text NOT NULL,
    PRIMARY KEY (tenant_id, site_id, code)
);
CREATE UNIQUE INDEX space_codes_by_space ON space_codes (tenant_id, space_id);

-- Reservation requests sent by the API, so their status can be asked for by the tenant
-- that made them while the fold has not decided yet.
CREATE TABLE reservation_requests (
    tenant_id      text        NOT NULL,
    request_id     text        NOT NULL,
    space_id       text        NOT NULL,
    reservation_id text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id)
);

-- The API lists a tenant's bays in (site, code, id) order, a page at a time.
CREATE INDEX spaces_listing ON spaces (tenant_id, site_id, code, space_id)
    WHERE registered_at IS NOT NULL;
