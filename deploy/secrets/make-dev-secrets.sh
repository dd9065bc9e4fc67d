#!/usr/bin/env sh
# Throwaway secrets for a local `docker compose up` (not for production).
set -eu
cd "$(dirname "$0")"
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s' "$password" > postgres_password
printf 'postgresql://parkstream:%s@postgres:5432/parkstream' "$password" > database_url
chmod 600 postgres_password database_url
echo "wrote deploy/secrets/postgres_password and deploy/secrets/database_url"
