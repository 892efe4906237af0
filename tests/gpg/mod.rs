//! Real GnuPG and sq for the OpenPGP tests: a temporary GNUPGHOME per person, keys made
//! by `gpg --gen-key` (RSA-3072 or Ed25519/Cv25519), mail built around `gpg --encrypt`,
//! `--sign`, `--clearsign` and `--detach-sign` output, and PGP/MIME wrappers (RFC 3156).
//!
//! gpg comes with the Debian package `gnupg`, sq with the package `sq`; without them the
//! tests fail naming the package. Each home's gpg-agent is stopped (for that home only)
//! when the home is dropped.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const GPG: &str = "/usr/bin/gpg";
pub const SQ: &str = "/usr/bin/sq";

fn require(tool: &str, package: &str) {
    assert!(
        Path::new(tool).exists(),
        "{tool} is missing: these tests need it; install the Debian package `{package}` (apt-get install {package})"
    );
}

/// Key types made by GnuPG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa3072,
    Ed25519,
}

/// One person's GnuPG home.
pub struct GpgHome {
    pub dir: tempfile::TempDir,
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        // Stops the agent of this home only (it is addressed by its socket directory).
        let _ = Command::new("/usr/bin/gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl GpgHome {
    pub fn new() -> GpgHome {
        require(GPG, "gnupg");
        let dir = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod");
        std::fs::write(
            dir.path().join("gpg.conf"),
            "trust-model always\nno-auto-key-locate\n",
        )
        .expect("gpg.conf");
        GpgHome { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs gpg in this home, non-interactively; panics with stderr on failure.
    pub fn gpg(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let o = self.gpg_output(args, stdin);
        assert!(
            o.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    /// Runs gpg and returns everything, success or not.
    pub fn gpg_output(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(GPG)
            .args([
                "--batch",
                "--yes",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .env("GNUPGHOME", self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gpg");
        let mut input = child.stdin.take().expect("stdin");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().expect("gpg output");
        let _ = writer.join();
        out
    }

    /// `gpg --gen-key` in batch mode; returns the primary fingerprint. `creation` and
    /// `expire` are GnuPG dates (`20200101T000000`), for keys made in the past.
    pub fn gen_key(
        &self,
        name: &str,
        email: &str,
        kind: KeyKind,
        creation: Option<&str>,
        expire: Option<&str>,
    ) -> String {
        let algo = match kind {
            KeyKind::Rsa3072 => {
                "Key-Type: RSA\nKey-Length: 3072\nSubkey-Type: RSA\nSubkey-Length: 3072\n"
            }
            KeyKind::Ed25519 => {
                "Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n"
            }
        };
        let mut params = format!(
            "%no-protection\n{algo}Key-Usage: sign,cert\nSubkey-Usage: encrypt\nName-Real: {name}\nName-Email: {email}\nExpire-Date: {}\n",
            expire.unwrap_or("0")
        );
        if let Some(c) = creation {
            params.push_str(&format!("Creation-Date: {c}\n"));
        }
        params.push_str("%commit\n");
        let mut args = vec!["--gen-key"];
        if let Some(c) = creation {
            args.splice(0..0, ["--faked-system-time", c]);
        }
        self.gpg(&args, params.as_bytes());
        self.fingerprint(email)
    }

    pub fn fingerprint(&self, email: &str) -> String {
        let out = String::from_utf8_lossy(&self.gpg(&["--with-colons", "--list-keys", email], b""))
            .into_owned();
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no fingerprint for {email}: {out}"))
    }

    pub fn export(&self, who: &str) -> Vec<u8> {
        self.gpg(&["--armor", "--export", who], b"")
    }

    pub fn export_secret(&self, who: &str) -> Vec<u8> {
        self.gpg(&["--armor", "--export-secret-keys", who], b"")
    }

    pub fn import(&self, key: &[u8]) {
        self.gpg(&["--import"], key);
    }

    /// Revokes a key with the revocation certificate GnuPG stored when making it.
    pub fn revoke(&self, fingerprint: &str) {
        let path = self
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{fingerprint}.rev"));
        let text = std::fs::read_to_string(&path).expect("revocation certificate");
        // GnuPG stores it with a colon before the armor so that it is not imported by
        // accident.
        let cert = text.replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        );
        self.import(cert.as_bytes());
    }

    /// `gpg --encrypt --sign --armor` (inline).
    pub fn encrypt_sign(&self, signer: &str, recipient: &str, data: &[u8]) -> Vec<u8> {
        self.gpg(
            &[
                "--armor",
                "--encrypt",
                "--sign",
                "--local-user",
                signer,
                "--recipient",
                recipient,
            ],
            data,
        )
    }

    /// `gpg --encrypt --armor`, no signature.
    pub fn encrypt(&self, recipient: &str, data: &[u8]) -> Vec<u8> {
        self.gpg(&["--armor", "--encrypt", "--recipient", recipient], data)
    }

    /// `gpg --encrypt` with zlib compression at its strongest (a compression bomb from
    /// repetitive data).
    pub fn encrypt_compressed(&self, recipient: &str, data: &[u8]) -> Vec<u8> {
        self.gpg(&["--armor", "--compress-algo", "zlib", "-z", "9", "--encrypt", "--recipient", recipient], data)
    }

    /// `gpg --clearsign`.
    pub fn clearsign(&self, signer: &str, text: &[u8], digest: Option<&str>) -> Vec<u8> {
        let mut args = vec!["--clearsign", "--local-user", signer];
        if let Some(d) = digest {
            args.extend(["--digest-algo", d]);
        }
        self.gpg(&args, text)
    }

    /// `gpg --detach-sign --armor` over exactly these bytes.
    pub fn detach_sign(&self, signer: &str, data: &[u8], digest: Option<&str>) -> Vec<u8> {
        let mut args = vec!["--armor", "--detach-sign", "--local-user", signer];
        if let Some(d) = digest {
            args.extend(["--digest-algo", d]);
        }
        self.gpg(&args, data)
    }

    /// `gpg --decrypt` with `--status-fd 2`: (plaintext, status lines).
    pub fn decrypt(&self, data: &[u8]) -> (Vec<u8>, String) {
        let o = self.gpg_output(&["--status-fd", "2", "--decrypt"], data);
        let status = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "gpg --decrypt failed: {status}");
        (o.stdout, status)
    }

    /// `gpg --verify SIG DATA` with `--status-fd 2`: (success, status lines).
    pub fn verify_detached(&self, sig: &[u8], data: &[u8]) -> (bool, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (s, d) = (dir.path().join("sig.asc"), dir.path().join("data"));
        std::fs::write(&s, sig).expect("sig");
        std::fs::write(&d, data).expect("data");
        let o = self.gpg_output(
            &[
                "--status-fd",
                "2",
                "--verify",
                s.to_str().unwrap_or_default(),
                d.to_str().unwrap_or_default(),
            ],
            b"",
        );
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

/// sq renamed its file options (0.27 `--recipient-key`/`--signer-cert`, 1.x
/// `--recipient-file`/`--signer-file`): the spelling the installed sq knows.
fn sq_flag(subcommand: &str, old: &str, new: &str) -> String {
    let help = Command::new(SQ)
        .args([subcommand, "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if help.contains(new) {
        new.to_string()
    } else {
        old.to_string()
    }
}

/// `sq decrypt` with a secret key file and the signer's certificate: (plaintext, stderr).
pub fn sq_decrypt(secret_key: &[u8], signer_cert: &[u8], data: &[u8]) -> (Vec<u8>, String) {
    require(SQ, "sq");
    let dir = tempfile::tempdir().expect("tempdir");
    let (k, c, m) = (
        dir.path().join("key.asc"),
        dir.path().join("signer.asc"),
        dir.path().join("msg.asc"),
    );
    std::fs::write(&k, secret_key).expect("key");
    std::fs::write(&c, signer_cert).expect("cert");
    std::fs::write(&m, data).expect("msg");
    let o = Command::new(SQ)
        .arg("decrypt")
        .arg(sq_flag("decrypt", "--recipient-key", "--recipient-file"))
        .arg(&k)
        .arg(sq_flag("decrypt", "--signer-cert", "--signer-file"))
        .arg(&c)
        .arg(&m)
        .output()
        .expect("run sq");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "sq decrypt failed: {err}");
    (o.stdout, err)
}

/// `sq verify --detached SIG --signer-file CERT DATA`: success and stderr.
pub fn sq_verify_detached(signer_cert: &[u8], sig: &[u8], data: &[u8]) -> (bool, String) {
    require(SQ, "sq");
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, s, d) = (
        dir.path().join("signer.asc"),
        dir.path().join("sig.asc"),
        dir.path().join("data"),
    );
    std::fs::write(&c, signer_cert).expect("cert");
    std::fs::write(&s, sig).expect("sig");
    std::fs::write(&d, data).expect("data");
    let signer = sq_flag("verify", "--signer-cert", "--signer-file");
    let o = Command::new(SQ)
        .args(["verify", "--detached"])
        .arg(&s)
        .arg(signer)
        .arg(&c)
        .arg(&d)
        .output()
        .expect("run sq");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A header block (CRLF) from `(name, value)` pairs.
pub fn headers(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect()
}

/// RFC 3156 §4: a `multipart/encrypted` mail around armored ciphertext.
pub fn pgp_mime_encrypted(head: &str, armored: &[u8]) -> Vec<u8> {
    let armored = crlf(armored);
    let mut out = format!(
        "{head}MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"enc-b\"\r\n\r\n\
         This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n--enc-b\r\nContent-Type: application/pgp-encrypted\r\n\
         Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n--enc-b\r\n\
         Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\nContent-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&armored);
    out.extend_from_slice(b"\r\n--enc-b--\r\n");
    out
}

/// RFC 3156 §5: a `multipart/signed` entity (no message headers) around `entity`, which
/// must already be CRLF-canonical, and its detached signature.
pub fn pgp_mime_signed_entity(entity: &[u8], sig: &[u8], boundary: &str) -> Vec<u8> {
    let mut out = format!(
        "Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"{boundary}\"\r\n\r\n\
         This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n--{boundary}\r\n"
    )
    .into_bytes();
    out.extend_from_slice(entity);
    out.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\nContent-Description: OpenPGP digital signature\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(&crlf(sig));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// A signed mail: the message headers, then the multipart/signed entity made by
/// `gpg --detach-sign` over `entity`.
pub fn pgp_mime_signed(
    home: &GpgHome,
    signer: &str,
    head: &str,
    entity: &[u8],
    digest: Option<&str>,
) -> Vec<u8> {
    let entity = crlf(entity);
    let sig = home.detach_sign(signer, &entity, digest);
    let mut out = format!("{head}MIME-Version: 1.0\r\n").into_bytes();
    out.extend_from_slice(&pgp_mime_signed_entity(&entity, &sig, "sig-b"));
    out
}

/// Bare LF made CRLF.
pub fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// The parts of a PGP/MIME message as casegate sends it: for `multipart/encrypted` the
/// armored ciphertext; for `multipart/signed` (signed entity, signature).
pub fn encrypted_part(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let start = text
        .find("-----BEGIN PGP MESSAGE-----")
        .expect("armored message");
    let end = text.find("-----END PGP MESSAGE-----").expect("armor end")
        + "-----END PGP MESSAGE-----".len();
    text[start..end].as_bytes().to_vec()
}

pub fn signed_parts(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let text = String::from_utf8_lossy(message).into_owned();
    let b_start = text.find("boundary=\"").expect("boundary") + "boundary=\"".len();
    let boundary = &text[b_start..b_start + text[b_start..].find('"').expect("quote")];
    let delim = format!("\r\n--{boundary}");
    let first = text
        .find(&format!("--{boundary}\r\n"))
        .expect("first delimiter")
        + boundary.len()
        + 4;
    let end = first + text[first..].find(&delim).expect("second delimiter");
    let signed = text.as_bytes()[first..end].to_vec();
    let sig_start = text
        .find("-----BEGIN PGP SIGNATURE-----")
        .expect("signature");
    let sig_end = text
        .find("-----END PGP SIGNATURE-----")
        .expect("signature end")
        + "-----END PGP SIGNATURE-----".len();
    (signed, text.as_bytes()[sig_start..sig_end].to_vec())
}

/// Writes the gateway key file (owner-only) that a config in `dir` picks up by default.
pub fn write_gateway_key(dir: &Path, domain: &str) -> PathBuf {
    let cert = casegate::pgp::keyring::generate(
        &format!("CERT <cases@{domain}>"),
        casegate::store::now_ms(),
        None,
    )
    .expect("generate");
    let path = dir.join("gateway-key.asc");
    std::fs::write(
        &path,
        casegate::pgp::keyring::armored_secret(&cert).expect("armor"),
    )
    .expect("write key");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    path
}
