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

# What building casegate needs beyond the Rust toolchain.
ensure_build_deps() {
  local missing=()
  for p in pkg-config libssl-dev; do have_pkg "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# Real servers the integration tests start: Postfix's smtp-sink.
ensure_test_deps() {
  if ! [ -x /usr/sbin/smtp-sink ]; then
    echo 'postfix postfix/main_mailer_type select No configuration' | as_root debconf-set-selections
    apt_install postfix
  fi
  # Dovecot for the IMAP tests and benchmark; openssl makes their throwaway certificates.
  local missing=()
  [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}
