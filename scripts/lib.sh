# Shared by the scripts: install missing Debian packages non-interactively.

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
  echo "installing Debian packages: $*" >&2
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

have_pkg() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# What building casegate needs beyond the Rust toolchain (libclang-dev: bindgen, used by
# the OpenPGP backend's build).
ensure_build_deps() {
  local missing=()
  for p in pkg-config libssl-dev libclang-dev; do have_pkg "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# Real servers and tools the integration tests use: Postfix's smtp-sink, Dovecot, GnuPG, sq.
ensure_test_deps() {
  local missing=()
  if ! [ -x /usr/sbin/smtp-sink ]; then
    echo 'postfix postfix/main_mailer_type select No configuration' | as_root debconf-set-selections
    missing+=(postfix)
  fi
  for p in gnupg sq; do have_pkg "$p" || missing+=("$p"); done
  # Dovecot for the IMAP tests and benchmark; openssl makes their throwaway certificates.
  [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# What scripts/fuzz.sh needs: cargo-fuzz (from crates.io) and a C++ compiler for the
# libFuzzer runtime that libfuzzer-sys builds.
ensure_fuzz_deps() {
  local missing=()
  command -v g++ >/dev/null || missing+=(g++)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked
  fi
}

# PostgreSQL server binaries (Debian's postgresql package: initdb, pg_ctl, postgres).
pg_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

ensure_postgres() {
  [ -n "$(pg_bin_dir)" ] && [ -x "$(pg_bin_dir)/initdb" ] || apt_install postgresql
}

# A throwaway PostgreSQL cluster in a temporary directory on a free loopback port, run as
# the unprivileged `postgres` user when we are root (initdb refuses root). Sets
# CASEGATE_TEST_DATABASE_URL (trust authentication, user casegate), PG_TEST_DIR and
# PG_TEST_PID; stop it with stop_test_postgres.
start_test_postgres() {
  local bin port run=()
  bin="$(pg_bin_dir)"
  PG_TEST_DIR="$(mktemp -d /tmp/casegate-pg.XXXXXX)"
  chmod 755 "$PG_TEST_DIR"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_TEST_DIR"
    run=(runuser -u postgres --)
  fi
  port="$(free_port)"
  "${run[@]}" "$bin/initdb" -D "$PG_TEST_DIR/data" -U casegate --auth=trust -E UTF8 >"$PG_TEST_DIR/initdb.log" 2>&1 \
    || { cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
  "${run[@]}" "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TEST_DIR -c max_connections=300 -c fsync=off" start >/dev/null \
    || { cat "$PG_TEST_DIR/server.log" >&2; return 1; }
  PG_TEST_PID="$(head -1 "$PG_TEST_DIR/data/postmaster.pid")"
  export CASEGATE_TEST_DATABASE_URL="postgres://casegate@127.0.0.1:$port/postgres"
  export CASEGATE_TEST_PG_BIN="$bin"
  echo "PostgreSQL test cluster: pid $PG_TEST_PID, $CASEGATE_TEST_DATABASE_URL" >&2
}

stop_test_postgres() {
  [ -n "${PG_TEST_PID:-}" ] || return 0
  kill -INT "$PG_TEST_PID" 2>/dev/null || true
  while kill -0 "$PG_TEST_PID" 2>/dev/null; do sleep 0.2; done
  rm -rf "$PG_TEST_DIR"
  PG_TEST_PID=""
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
