#!/usr/bin/env bash
# The ingest benchmark of docs/BENCHMARKS.md (SPEC §11): a throwaway Dovecot and a fresh
# gateway in a temporary directory, then `casegate bench ingest` against them. Arguments go
# to the bench command (default: --count 10000 --latency 200; --end-to-end sends every
# notification to a throwaway smtp-sink too). BENCH_WRAPPER, when set, is
# put before the command, e.g. BENCH_WRAPPER="perf record -g -o /tmp/casegate.perf";
# CASEGATE_BIN runs that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_build_deps
ensure_test_deps
if [ -n "${CASEGATE_BIN:-}" ]; then
  bin=$CASEGATE_BIN
else
  cargo build --locked --release --quiet
  bin=$PWD/target/release/casegate
fi

work=$(mktemp -d)
dovecot_pid=""
sink_pid=""
cleanup() {
  if [ -n "$dovecot_pid" ]; then kill -TERM "$dovecot_pid" 2>/dev/null || true; wait "$dovecot_pid" 2>/dev/null || true; fi
  if [ -n "$sink_pid" ]; then kill -TERM "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

# Dovecot from the tests' template: Maildir under $work, plain listener on loopback.
port=$(free_port); tls_port=$(free_port)
if [ "$(id -u)" = 0 ]; then
  mail_user=mail; mail_group=$(id -gn mail); internal=dovecot; login=dovenull; first_uid=$(id -u mail)
else
  mail_user=$(id -un); mail_group=$(id -gn); internal=$mail_user; login=$mail_user; first_uid=$(id -u)
fi
mkdir -p "$work/tls" "$work/home"
chown "$mail_user:$mail_group" "$work/home"
( cd "$work/tls"
  ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=casegate bench CA" 2>/dev/null
  openssl req "${ec[@]}" -keyout key.pem -out cert.csr -subj /CN=localhost 2>/dev/null
  echo "subjectAltName=DNS:localhost,IP:127.0.0.1" > ext.cnf
  openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf 2>/dev/null )
sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$port|g" -e "s|@TLS_PORT@|$tls_port|g" \
    -e "s|@MAIL_USER@|$mail_user|g" -e "s|@MAIL_GROUP@|$mail_group|g" \
    -e "s|@INTERNAL_USER@|$internal|g" -e "s|@LOGIN_USER@|$login|g" -e "s|@FIRST_UID@|$first_uid|g" \
    tests/dovecot/dovecot.conf.in > "$work/dovecot.conf"
echo 'bench:{PLAIN}bench-password::::::' > "$work/users"
/usr/sbin/dovecot -F -c "$work/dovecot.conf" &
dovecot_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# postfix's smtp-sink accepts every message: the transport of `--end-to-end` runs.
smtp_port=$(free_port)
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody)
/usr/sbin/smtp-sink "${sink_user[@]}" "127.0.0.1:$smtp_port" 1000 &
sink_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null && break; sleep 0.1; done

# A fresh gateway reading that mailbox.
"$bin" init "$work/gw" --domain bench.example > /dev/null
echo bench-password > "$work/gw/imap-password"
# The generated [outbound] (files in a directory) gives way to smtp-sink below.
sed -i '/^\[outbound\]/,/^$/d' "$work/gw/casegate.toml"
cat >> "$work/gw/casegate.toml" <<TOML

[posting]
trusted_authserv_ids = ["mx.bench.example"]

[log]
level = "warn"

[outbound]
transport = "smtp"
concurrency = 16

[outbound.smtp]
host = "127.0.0.1"
port = $smtp_port
tls = "none"
pool_size = 8

[imap]
host = "127.0.0.1"
port = $port
tls = "none"
username = "bench"
password_file = "imap-password"
TOML
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
${BENCH_WRAPPER:-} "$bin" --config "$work/gw/casegate.toml" bench ingest "$@"
