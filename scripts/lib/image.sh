# shellcheck shell=bash
#
# podman and its stand-in base images, for scripts/image-test. Source scripts/lib/services.sh
# first (svc_apt_install), then this file:
#
#   image_tools_install      podman, runc, debootstrap, uidmap (apt-get) when missing
#   image_podman_conf DIR    write DIR/containers.conf and export CONTAINERS_CONF
#   pm ARGS...               podman with the runtime and cgroup manager that work here
#   image_ensure_bases       the stand-ins for the Dockerfile's FROM images, built when missing
#   py_tool DIR PKG==VER     a pinned PyPI tool in a venv under DIR (.local/tools/venv); prints
#                            the venv's bin directory
#   image_compose_config     docker-compose.yml through podman-compose's parser
#
# Why stand-ins: no registry can be reached here, so `FROM rust:1-bookworm` and
# `FROM debian:bookworm-slim` must find local images of those names. Elsewhere the same
# Dockerfile pulls the official ones.

# crun and podman's default ulimits are refused on this machine (a container without its own
# cgroup namespace); runc with cgroupfs works. Set both in the config and on the command line,
# so that `podman build`'s RUN steps and plain `podman` calls use them too.
PM_FLAGS=(--runtime runc --cgroup-manager cgroupfs)
pm() { podman "${PM_FLAGS[@]}" "$@"; }

RUNTIME_BASE=docker.io/library/debian:bookworm-slim
BUILD_BASE=docker.io/library/rust:1-bookworm
PODMAN_COMPOSE_PIN="podman-compose==1.6.0"

image_tools_install() {
    local -a need=()
    command -v podman >/dev/null 2>&1 || need+=(podman)
    command -v runc >/dev/null 2>&1 || [[ -x /usr/sbin/runc ]] || need+=(runc)
    command -v debootstrap >/dev/null 2>&1 || [[ -x /usr/sbin/debootstrap ]] || need+=(debootstrap)
    command -v newuidmap >/dev/null 2>&1 || need+=(uidmap)
    command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
    command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
    command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
    # Debian's python3 makes venvs only with python3-venv (ensurepip).
    python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3 python3-venv)
    if ((${#need[@]})); then
        svc_apt_install "${need[@]}"
    fi
    # debootstrap lives in /usr/sbin, which a non-login root shell may not have on PATH.
    PATH="$PATH:/usr/sbin:/sbin"
}

image_podman_conf() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF
    export CONTAINERS_CONF="$dir/containers.conf"
}

# The Debian mirror this machine's apt uses (deb.debian.org unless configured otherwise), so the
# stand-ins' apt works wherever the host's does. DEBIAN_MIRROR overrides it.
_image_mirror() {
    if [[ -n ${DEBIAN_MIRROR:-} ]]; then
        printf '%s\n' "$DEBIAN_MIRROR"
        return
    fi
    local uri
    uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        sed -n 's/^URIs:[[:space:]]*\(\S*\/debian\)\/\?$/\1/p' | head -n 1)
    [[ -n $uri ]] || uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
        awk '$2 ~ /\/debian\/?$/ {print $2; exit}')
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# debian:bookworm-slim: a minbase bootstrap with apt sources laid out as the official image has
# them (bookworm, -updates, -security), and apt's caches emptied.
_image_build_runtime_base() {
    local work=$1 mirror rootfs
    mirror=$(_image_mirror)
    rootfs="$work/rootfs"
    rm -rf "$rootfs"
    _svc_log "image: debootstrap --variant=minbase bookworm from $mirror (a minute or two)"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
        tail -n 20 "$work/debootstrap.log" >&2
        _svc_die "debootstrap failed (see $work/debootstrap.log)"
        return 1
    }
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | pm import --change 'CMD ["bash"]' - "$RUNTIME_BASE" >/dev/null
    rm -rf "$rootfs"
}

# rust:1-bookworm: the runtime stand-in plus the C toolchain, this machine's Rust toolchain
# (without its docs) laid out as the official image has it (/usr/local/rustup, /usr/local/cargo),
# and this machine's CA bundle for cargo: inside a container crates.io answers only with it.
_image_build_build_base() {
    local work=$1 sysroot
    sysroot=$(rustc --print sysroot) || {
        _svc_die "rustc not found: the build base copies this machine's Rust toolchain"
        return 1
    }
    mkdir -p "$work/ctx"
    cp /etc/ssl/certs/ca-certificates.crt "$work/ctx/host-ca.crt"
    cat >"$work/ctx/Containerfile" <<EOF
FROM $RUNTIME_BASE
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make pkg-config \\
    && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /usr/local/rustup/toolchains/host /usr/local/cargo/bin \\
    && cp -a /toolchain/bin /toolchain/lib /toolchain/libexec /usr/local/rustup/toolchains/host/ \\
    && ln -s /usr/local/rustup/toolchains/host/bin/* /usr/local/cargo/bin/
COPY host-ca.crt /usr/local/share/host-ca.crt
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    CARGO_HTTP_CAINFO=/usr/local/share/host-ca.crt \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
    _svc_log "image: building the $BUILD_BASE stand-in (Rust from $sysroot)"
    pm build --pull=never --network host --volume "$sysroot:/toolchain:ro" \
        -t "$BUILD_BASE" "$work/ctx" >&2
}

image_ensure_bases() {
    local work="$_SVC_LOCAL/image-test/bases"
    mkdir -p "$work"
    if [[ -n ${IMAGE_TEST_REBUILD_BASES:-} ]]; then
        pm rmi -f "$BUILD_BASE" "$RUNTIME_BASE" >/dev/null 2>&1 || true
    fi
    if pm image exists "$RUNTIME_BASE"; then
        _svc_log "image: $RUNTIME_BASE present (IMAGE_TEST_REBUILD_BASES=1 rebuilds it)"
    else
        _image_build_runtime_base "$work" || return 1
    fi
    if pm image exists "$BUILD_BASE"; then
        _svc_log "image: $BUILD_BASE present (IMAGE_TEST_REBUILD_BASES=1 rebuilds it)"
    else
        _image_build_build_base "$work" || return 1
    fi
}

py_tool() {
    local dir=$1 pin=$2
    if [[ ! -x $dir/bin/python ]]; then
        python3 -m venv "$dir" >&2 || {
            _svc_die "python3 -m venv failed (install python3-venv)"
            return 1
        }
    fi
    if ! "$dir/bin/python" -m pip show "${pin%%==*}" 2>/dev/null | grep -qx "Version: ${pin#*==}"; then
        "$dir/bin/python" -m pip install -q "$pin" >&2 || return 1
    fi
    printf '%s\n' "$dir/bin"
}

# podman-compose resolves the file as Compose does (interpolation, profiles, depends_on) and
# exits non-zero on what it cannot parse. Prints the services it found.
image_compose_config() {
    local bin out services
    bin=$(py_tool "$_SVC_LOCAL/tools/venv" "$PODMAN_COMPOSE_PIN") || return 1
    out=$("$bin/podman-compose" -f "$_SVC_REPO/docker-compose.yml" config) || return 1
    "$bin/podman-compose" -f "$_SVC_REPO/docker-compose.yml" --profile monitoring config >/dev/null || return 1
    # What podman-compose lets through: depends_on naming no service, a named volume not declared.
    services=$(printf '%s\n' "$out" | "$bin/python" -c '
import sys, yaml
doc = yaml.safe_load(sys.stdin)
services, volumes = doc["services"], doc.get("volumes") or {}
for name, svc in services.items():
    for dep in svc.get("depends_on") or []:
        if dep not in services:
            sys.exit(f"service {name} depends on {dep}, which is not a service")
    for vol in svc.get("volumes") or []:
        src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
        if src and not src.startswith((".", "/", "~")) and src not in volumes:
            sys.exit(f"service {name} mounts volume {src}, which is not declared")
print(" ".join(sorted(services)))') || return 1
    printf 'parsed; services: %s\n' "$services"
}

# image_redis_tls_start DIR : a redis-server of its own that speaks only TLS, on a free port,
# with a CA and a server certificate (for 127.0.0.1 and localhost) generated into DIR. Prints
# the port; DIR/ca.crt is the CA a client must trust. image_redis_tls_stop DIR stops it.
image_redis_tls_start() {
    local dir=$1 port i
    command -v openssl >/dev/null 2>&1 || svc_apt_install openssl || return 1
    command -v redis-server >/dev/null 2>&1 || svc_apt_install redis-server || return 1
    mkdir -p "$dir"
    (
        cd "$dir" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=coupon-issuer image-test CA" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
            -keyout ca.key -out ca.crt
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
            "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.crt
        # Read by the service's user inside the container (a bind mount keeps the mode).
        chmod 644 ca.crt
    ) >"$dir/openssl.log" 2>&1 || {
        _svc_die "openssl failed (see $dir/openssl.log)"
        return 1
    }
    port=$(_svc_free_port 6480) || return 1
    redis-server --bind 127.0.0.1 --port 0 --tls-port "$port" \
        --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
        --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --dir "$dir" --save "" --appendonly no >&2 || return 1
    for ((i = 0; i < 50; i++)); do
        if [[ $(redis-cli --tls --cacert "$dir/ca.crt" -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
            printf '%s\n' "$port"
            return 0
        fi
        sleep 0.2
    done
    _svc_die "the TLS redis-server on port $port did not answer (see $dir/redis.log)"
}

image_redis_tls_stop() {
    local dir=$1 pid
    _svc_pid_alive "$dir/redis.pid" || return 0
    pid=$(head -n 1 "$dir/redis.pid" | tr -dc '0-9')
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server && kill "$pid" 2>/dev/null
    return 0
}
