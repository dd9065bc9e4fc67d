#!/usr/bin/env sh
# Throwaway secrets for a local `docker compose up` (not for production).
#
# Compose mounts file secrets into the containers as they are on the host, owner and mode
# included, and the processes there run as their own users (parkstream 10001, grafana 472,
# chirpstack nobody): the files must be readable by others. Keep real secrets elsewhere.
set -eu
cd "$(dirname "$0")"
token() { head -c "$1" /dev/urandom | base64 | tr -d '/+=\n'; }
password=$(token 18)
printf '%s' "$password" > postgres_password
printf 'postgresql://parkstream:%s@postgres:5432/parkstream' "$password" > database_url
token 18 > grafana_admin_password
token 18 > chirpstack_postgres_password
token 32 > chirpstack_api_secret
chmod 644 postgres_password database_url grafana_admin_password \
    chirpstack_postgres_password chirpstack_api_secret
echo "wrote postgres_password, database_url, grafana_admin_password," \
    "chirpstack_postgres_password and chirpstack_api_secret in deploy/secrets/"
