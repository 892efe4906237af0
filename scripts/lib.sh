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
