//! `casegate keys`: the gateway key (generate, export) and the contacts' certificates
//! (import, list, confirm, remove, check) (SPEC §5, §5.4).

use super::{output, CmdResult, Failure, EXIT_USAGE};
use crate::config::Config;
use crate::pgp::keyring;
use crate::store::now_ms;
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Generate the gateway key (Ed25519 signing, Cv25519 encryption, v4) into pgp.key_file.
    Generate {
        /// The name in the user ID; default the gateway name.
        #[arg(long)]
        name: Option<String>,
        /// Days until the key expires; 0 for never.
        #[arg(long, default_value_t = 1095)]
        valid_days: u64,
    },
    /// Print the gateway's public key (armored), for publishing.
    Export,
    /// Import the certificates in FILE for a contact, confirmed.
    Import {
        file: PathBuf,
        /// The contact's address.
        #[arg(long)]
        contact: String,
    },
    /// List the gateway key and every stored certificate with its state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Confirm a candidate certificate (from an attachment or an Autocrypt header).
    Confirm {
        fingerprint: String,
        /// Only the certificate of this contact.
        #[arg(long)]
        contact: Option<String>,
    },
    /// Remove a certificate.
    Remove {
        fingerprint: String,
        /// Only the certificate of this contact.
        #[arg(long)]
        contact: Option<String>,
    },
    /// Warn (log and history) about contacts whose last usable key expires within 14 days.
    Check,
}

fn usage(flag: &str, message: String) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: format!("{flag}: {message}"),
    }
}

pub async fn keys(cfg: &Config, cmd: &KeysCmd) -> CmdResult {
    match cmd {
        KeysCmd::Generate { name, valid_days } => generate(cfg, name.as_deref(), *valid_days),
        KeysCmd::Export => {
            let keys = cfg.pgp.keys.as_ref().ok_or_else(no_key)?;
            print!("{}", keys.armored_public()?);
            Ok(())
        }
        KeysCmd::Import { file, contact } => import(cfg, file, contact).await,
        KeysCmd::List { json } => list(cfg, *json).await,
        KeysCmd::Confirm {
            fingerprint,
            contact,
        } => {
            let store = crate::app::open_store(cfg).await?;
            changed(
                store.confirm_key(fingerprint, contact.as_deref()).await?,
                fingerprint,
                "confirmed",
            )
        }
        KeysCmd::Remove {
            fingerprint,
            contact,
        } => {
            let store = crate::app::open_store(cfg).await?;
            changed(
                store.remove_key(fingerprint, contact.as_deref()).await?,
                fingerprint,
                "removed",
            )
        }
        KeysCmd::Check => check(cfg).await,
    }
}

fn no_key() -> Failure {
    Failure {
        code: 1,
        message: "no gateway key: run `casegate keys generate` first".into(),
    }
}

fn changed(n: u64, fingerprint: &str, what: &str) -> CmdResult {
    if n == 0 {
        return Err(usage(
            "FINGERPRINT",
            format!("no stored certificate {fingerprint}"),
        ));
    }
    println!("{what} {n} certificate(s) {fingerprint}");
    Ok(())
}

/// Writes a new secret key to `pgp.key_file`, owner-only. An existing file is never
/// overwritten: for a rollover, move it to `pgp.old_key_files` first.
fn generate(cfg: &Config, name: Option<&str>, valid_days: u64) -> CmdResult {
    let path = &cfg.pgp.key_file;
    if path.exists() {
        return Err(Failure {
            code: 1,
            message: format!("{} already exists; to roll over, move it, list it in pgp.old_key_files, then generate", path.display()),
        });
    }
    let name = name.unwrap_or(&cfg.gateway.name);
    let user_id = format!("{} <{}>", name.trim(), cfg.address_book().gateway_address());
    let cert = keyring::generate(&user_id, now_ms(), (valid_days > 0).then_some(valid_days))?;
    write_private(path, keyring::armored_secret(&cert)?.as_bytes())?;
    println!(
        "wrote {} ({})",
        path.display(),
        cert.fingerprint().to_spaced_hex()
    );
    println!("user ID: {user_id}");
    println!("next: casegate keys export > gateway.asc, and publish it");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(|e| Failure {
        code: 1,
        message: format!("cannot create {}: {e}", path.display()),
    })?;
    f.write_all(bytes).map_err(|e| Failure {
        code: 1,
        message: format!("cannot write {}: {e}", path.display()),
    })
}

async fn import(cfg: &Config, file: &Path, contact: &str) -> CmdResult {
    let bytes = std::fs::read(file)
        .map_err(|e| usage("FILE", format!("cannot read {}: {e}", file.display())))?;
    let certs = keyring::parse_certs(&bytes).map_err(|e| usage("FILE", e.to_string()))?;
    let store = crate::app::open_store(cfg).await?;
    store
        .contact_by_email(contact)
        .await
        .map_err(|e| usage("--contact", e.to_string()))?;
    let now = now_ms();
    for (fpr, stored) in store.import_keys(contact, &certs).await? {
        let state = certs
            .iter()
            .find(|c| c.fingerprint().to_hex() == fpr)
            .map(|c| keyring::cert_state(c, now).as_str())
            .unwrap_or("invalid");
        println!(
            "{} {fpr} for {contact} ({state})",
            if stored == crate::store::keys::Stored::New {
                "imported"
            } else {
                "updated"
            }
        );
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Listing {
    gateway: Vec<GatewayKey>,
    certificates: Vec<crate::store::keys::KeyRow>,
}

#[derive(serde::Serialize)]
struct GatewayKey {
    fingerprint: String,
    /// `current` signs and decrypts; `old` only decrypts.
    role: &'static str,
    user_ids: Vec<String>,
    state: String,
    usable_until_ms: Option<i64>,
}

fn gateway_keys(cfg: &Config, now: i64) -> Vec<GatewayKey> {
    let Some(keys) = &cfg.pgp.keys else {
        return Vec::new();
    };
    keys.public_certs()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let state = keyring::cert_state(c, now);
            let until = match state {
                keyring::CertState::Usable { until_ms } => until_ms,
                _ => None,
            };
            GatewayKey {
                fingerprint: c.fingerprint().to_hex(),
                role: if i == 0 { "current" } else { "old" },
                user_ids: keyring::emails(c, now),
                state: state.as_str().into(),
                usable_until_ms: until,
            }
        })
        .collect()
}

async fn list(cfg: &Config, json: bool) -> CmdResult {
    let store = crate::app::open_store(cfg).await?;
    let now = now_ms();
    let listing = Listing {
        gateway: gateway_keys(cfg, now),
        certificates: store.list_keys(now).await?,
    };
    if json {
        output::json(&listing);
        return Ok(());
    }
    let until = |u: Option<i64>| u.map(output::time).unwrap_or_else(|| "-".into());
    let mut rows: Vec<Vec<String>> = listing
        .gateway
        .iter()
        .map(|g| {
            vec![
                format!("(gateway, {})", g.role),
                g.fingerprint.clone(),
                "yes".into(),
                "config".into(),
                g.state.clone(),
                until(g.usable_until_ms),
            ]
        })
        .collect();
    rows.extend(listing.certificates.iter().map(|k| {
        let confirmed = if k.confirmed { "yes" } else { "no" };
        vec![
            k.contact.clone(),
            k.fingerprint.clone(),
            confirmed.into(),
            k.source.clone(),
            k.state.clone(),
            until(k.usable_until_ms),
        ]
    }));
    output::table(
        &[
            "CONTACT",
            "FINGERPRINT",
            "CONFIRMED",
            "SOURCE",
            "STATE",
            "USABLE UNTIL",
        ],
        &rows,
    );
    Ok(())
}

async fn check(cfg: &Config) -> CmdResult {
    let store = crate::app::open_store(cfg).await?;
    let state = crate::pgp::PgpState::new(cfg.pgp.keys.clone());
    let given = store.warn_expiring_keys(&state, now_ms()).await?;
    let soon = now_ms() + crate::store::keys::EXPIRY_WARNING_DAYS * 86_400_000;
    for g in gateway_keys(cfg, now_ms())
        .iter()
        .filter(|g| g.role == "current")
    {
        if g.usable_until_ms.is_some_and(|u| u <= soon) || g.state != "usable" {
            println!(
                "warning: the gateway key {} is {} until {}",
                g.fingerprint,
                g.state,
                g.usable_until_ms
                    .map(output::time)
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
    for e in &given {
        println!(
            "warning: the only usable key of {} ({}) expires {}",
            e.email,
            e.fingerprint,
            output::time(e.expires_at_ms)
        );
    }
    if given.is_empty() {
        println!("no new expiry warnings");
    }
    Ok(())
}
