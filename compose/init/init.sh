#!/usr/bin/env bash
# One-shot cluster set-up for the compose stack (service `init`, run with the Citus image's psql):
# wait for every node, register the coordinator and the workers, create the demo schema.
# Idempotent: re-running it on a set-up cluster changes nothing.
set -euo pipefail

: "${PGPASSWORD:?PGPASSWORD is not set (POSTGRES_PASSWORD in compose/.env)}"
export PGUSER="${PGUSER:-postgres}"
export PGDATABASE="${PGDATABASE:-citus}"
coordinator="${COORDINATOR_HOST:-coordinator}"
read -r -a workers <<< "${WORKER_HOSTS:-worker1 worker2}"
wait_seconds="${INIT_WAIT_SECONDS:-180}"
# The port every node listens on inside the compose network (and is registered with).
port="${NODE_PORT:-5432}"
here="$(cd "$(dirname "$0")" && pwd)"

log() { printf 'init: %s\n' "$*" >&2; }

# Wait (bounded) until a node accepts TCP connections, then check that we can log in and that
# the citus extension is there (the image creates it in POSTGRES_DB during initdb).
wait_for() {
  local host=$1 deadline=$((SECONDS + wait_seconds))
  until pg_isready -q -h "$host" -p "$port" -d "$PGDATABASE"; do
    if (( SECONDS >= deadline )); then
      log "$host:$port is not accepting connections after ${wait_seconds}s"
      exit 1
    fi
    sleep 1
  done
  local version
  if ! version=$(psql -h "$host" -p "$port" -X -tAq -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'"); then
    log "cannot log in to $host as $PGUSER (is POSTGRES_PASSWORD the one the volumes were created with?)"
    exit 1
  fi
  if [[ -z "$version" ]]; then
    log "$host: database $PGDATABASE has no citus extension"
    exit 1
  fi
  log "$host is ready (citus $version)"
}

wait_for "$coordinator"
for w in "${workers[@]}"; do
  wait_for "$w"
done

psql_c() { psql -h "$coordinator" -p "$port" -X -q -v ON_ERROR_STOP=1 "$@"; }

# citus_add_node on a node that is already registered returns its id and changes nothing.
log "registering the coordinator and ${#workers[@]} workers"
psql_c -tA -c "SELECT citus_set_coordinator_host('$coordinator', $port)" >/dev/null
for w in "${workers[@]}"; do
  psql_c -tA -c "SELECT citus_add_node('$w', $port)" >/dev/null
done

# Shard-local routing (routing.shard_local) logs in to the workers as the client's role with the
# secret the proxy checked on the coordinator. Each image hashed POSTGRES_PASSWORD with its own
# salt, so the coordinator's SCRAM secret is copied to the workers, as Citus's own role
# propagation does for roles created through the coordinator.
secret=$(psql_c -tA -c "SELECT rolpassword FROM pg_authid WHERE rolname = current_user")
for w in "${workers[@]}"; do
  # From standard input: psql interpolates :'secret' there (not in -c strings).
  psql -h "$w" -p "$port" -X -q -v ON_ERROR_STOP=1 -v secret="$secret" <<'SQL'
SET citus.enable_ddl_propagation = off;
ALTER ROLE CURRENT_USER PASSWORD :'secret';
SQL
done

log "creating the demo schema"
psql_c -f "$here/demo-schema.sql"

psql_c -c "SELECT nodename, nodeport, noderole, isactive FROM pg_dist_node ORDER BY nodeid"
psql_c -c "SELECT logicalrelid AS table_name, partmethod, colocationid FROM pg_dist_partition ORDER BY logicalrelid::text"
log "done"
