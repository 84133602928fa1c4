#!/usr/bin/env bash
# Start a Docker engine with gVisor's runsc registered, if none is reachable yet.
# Idempotent: with an engine already answering, it only checks that runsc is registered.
# Needs root and Debian's docker.io and runsc packages (scripts/setup.sh --docker installs them).
set -euo pipefail

log() { printf 'docker-engine: %s\n' "$*" >&2; }

RUNSC=$(command -v runsc || true)
DAEMON_JSON=/etc/docker/daemon.json

# runsc's own --network=none: this gVisor refuses Docker's network namespace setup
# otherwise; --host-uds=open lets a sandbox connect to a host socket in its mounted
# folder (the reverse tunnel of the docker backend).
if [ -n "$RUNSC" ] && { [ ! -f "$DAEMON_JSON" ] || ! grep -q -- '--host-uds=open' "$DAEMON_JSON"; }; then
    mkdir -p /etc/docker
    cat > "$DAEMON_JSON" <<JSON
{
  "runtimes": {
    "runsc": {"path": "$RUNSC", "runtimeArgs": ["--network=none", "--host-uds=open"]}
  }
}
JSON
    log "registered runsc ($RUNSC) in $DAEMON_JSON"
    if [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        kill -HUP "$(cat /var/run/docker.pid)"
        sleep 1
    fi
fi

if docker info >/dev/null 2>&1; then
    log "engine already running"
else
    command -v dockerd >/dev/null || { log "dockerd not installed"; exit 1; }
    log "starting dockerd"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/dockerd.log"; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi

if docker info --format '{{json .Runtimes}}' | grep -q runsc; then
    log "runtimes: $(docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}')"
else
    log "warning: runsc is not registered with the engine"
fi
