#!/bin/sh
# ChirpStack's migrations need these extensions; only a superuser may create them, so the
# database's first start does (docker-entrypoint-initdb.d runs on an empty data directory only).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS hstore;
SQL
