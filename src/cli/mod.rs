//! The command line (SPEC §10): one file per subcommand group. `main` parses and calls
//! [`run`]; every command returns an exit status.

mod admin;
mod benchpgp;
mod keys;
mod bench;
mod imapcmd;
mod mailcmd;
mod output;

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit status for usage and configuration errors (also clap's).
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(name = "casegate", version, about = "Bridges email and vulnerability-coordination cases")]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "CASEGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working configuration, a fresh secret and an empty database into DIR.
    Init {
        dir: PathBuf,
        #[arg(long)]
        domain: String,
        /// The database: `sqlite://PATH` (default `sqlite://casegate.db` in DIR) or
        /// `postgres://USER@HOST/DB` (an existing, empty database; several instances).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Check the configuration and print every problem (exit 2 when there is one).
    CheckConfig,
    /// Run the database migrations and exit.
    Migrate,
    /// Database administration.
    #[command(subcommand)]
    Db(DbCmd),
    /// Ingest one mail from standard input (an MTA pipe) or FILE; exit 75 to ask for a retry.
    Deliver {
        file: Option<PathBuf>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon: IMAP and Maildir ingest and the outbox worker, until SIGTERM.
    Serve,
    /// Dry runs of routing decisions.
    #[command(subcommand)]
    Route(admin::RouteCmd),
    /// Organizations.
    #[command(subcommand)]
    Org(admin::OrgCmd),
    /// Contacts.
    #[command(subcommand)]
    Contact(admin::ContactCmd),
    /// Cases.
    #[command(subcommand)]
    Case(admin::CaseCmd),
    /// Reports (intake tickets).
    #[command(subcommand)]
    Report(admin::ReportCmd),
    /// Write a post into a thread as a coordinator.
    Post(mailcmd::PostArgs),
    /// Held mail.
    #[command(subcommand)]
    Quarantine(mailcmd::QuarantineCmd),
    /// Outbound queue.
    #[command(subcommand)]
    Outbox(mailcmd::OutboxCmd),
    /// OpenPGP keys: the gateway key and the contacts' certificates.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Daily digests for contacts with notify mode `digest`.
    #[command(subcommand)]
    Digest(mailcmd::DigestCmd),
    /// Scheduled work: reminders, digests, key checks, the coordinators' notes.
    #[command(subcommand)]
    Schedule(mailcmd::ScheduleCmd),
    /// The IMAP source.
    #[command(subcommand)]
    Imap(imapcmd::ImapCmd),
    /// Measure throughput on this machine (SPEC §11, docs/BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Play a whole coordination in a temporary directory and print what everyone received.
    Demo {
        /// Keep the demo's files in DIR instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// A CLI failure with the exit status to return.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure { code: 1, message: e.to_string() }
    }
}

pub type CmdResult = Result<(), Failure>;

/// Load the configuration named by `--config`; problems are a usage failure (exit 2).
pub fn load_config(path: Option<&PathBuf>) -> Result<Config, Failure> {
    let path = path.ok_or_else(|| Failure {
        code: EXIT_USAGE,
        message: "no configuration: pass --config FILE or set CASEGATE_CONFIG".into(),
    })?;
    Config::load(path).map_err(|errs| Failure {
        code: EXIT_USAGE,
        message: format!("configuration {} has {} problem(s):\n{errs}", path.display(), errs.0.len()),
    })
}

/// sysexits.h EX_TEMPFAIL: the MTA keeps the mail and offers it again.
pub const EX_TEMPFAIL: i32 = crate::ingest::stdin::EX_TEMPFAIL;

/// Parse the command line, or print the usage error and exit. A usage error exits 2, but
/// `deliver` runs in an MTA's pipe, where a bad flag is not the mail's fault: it exits 75
/// so that the MTA keeps the mail until the pipe is fixed.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() && invokes_deliver(std::env::args().skip(1)) { EX_TEMPFAIL } else { e.exit_code() };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}

/// Whether the subcommand of these arguments (after the global `--config FILE`) is `deliver`.
fn invokes_deliver(mut args: impl Iterator<Item = String>) -> bool {
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => return a == "deliver",
        }
    }
    false
}

/// Files and directories this process creates (config, secret, database and its -wal and
/// -shm, gateway key, outbox files, Maildir) are private to its user whatever umask it was
/// started with: 0600 files, 0700 directories.
pub fn private_files() {
    // SAFETY: umask(2) only sets the process's file mode creation mask; it cannot fail.
    #[cfg(unix)]
    unsafe {
        libc::umask(0o077);
    }
}

/// Run one command; returns the process exit status.
pub async fn run(cli: Cli) -> i32 {
    private_files();
    let result = dispatch(&cli).await;
    match result {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("casegate: {}", f.message);
            f.code
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Copy a gateway's database into an empty one (e.g. `--from sqlite:///srv/cg/casegate.db
    /// --to postgres://casegate@db/casegate`), every table with its ids, checked by row
    /// counts and checksums per table. Stop `serve` first.
    Copy {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

/// `db copy`: both databases are migrated first, then every table copied and checked.
async fn db_copy(from: &str, to: &str) -> CmdResult {
    let open = |url: &str, flag: &'static str| {
        let url = url.to_string();
        async move { crate::store::Store::open(&url).await.map_err(|e| Failure::from(format!("{flag} {url}: {e}"))) }
    };
    let source = open(from, "--from").await?;
    let target = open(to, "--to").await?;
    let copied = source.copy_to(&target).await.map_err(|e| Failure::from(format!("db copy: {e}")))?;
    for t in &copied {
        println!("{:<24} {:>9} rows  checksum {}", t.table, t.rows, t.checksum);
    }
    println!("copied {} tables from {from} to {to}; counts and checksums match", copied.len());
    Ok(())
}

async fn dispatch(cli: &Cli) -> CmdResult {
    let cfg_path = cli.config.as_ref();
    match &cli.command {
        Command::Init { dir, domain, database_url } => admin::init(dir, domain, database_url.as_deref()).await,
        Command::Demo { dir } => crate::demo::run(dir.as_deref()).await.map_err(Failure::from),
        Command::Db(DbCmd::Copy { from, to }) => db_copy(from, to).await,
        Command::Bench(bench::BenchCmd::Pgp(b)) => benchpgp::run(b).await.map_err(|e| Failure::from(format!("{e:#}"))),
        Command::Deliver { file, json } => {
            // An MTA pipe: a missing or bad configuration (or secret) is not the mail's
            // fault, so the MTA is asked to keep it and retry (exit 75), not to bounce it.
            let cfg = load_config(cfg_path).map_err(|f| Failure { code: EX_TEMPFAIL, message: f.message })?;
            crate::app::init_logging(cfg.log.format, &cfg.log.level);
            mailcmd::deliver(&cfg, file.as_deref(), *json).await
        }
        Command::CheckConfig => {
            let cfg = load_config(cfg_path)?;
            let problems = crate::config::check_files(&cfg);
            if !problems.0.is_empty() {
                let n = problems.0.len();
                let message = format!("configuration {} has {n} problem(s):\n{problems}", cfg.source.display());
                return Err(Failure { code: EXIT_USAGE, message });
            }
            println!("configuration {} is valid", cfg.source.display());
            Ok(())
        }
        other => {
            let cfg = load_config(cfg_path)?;
            crate::app::init_logging(cfg.log.format, &cfg.log.level);
            with_config(other, cfg).await
        }
    }
}

async fn with_config(cmd: &Command, cfg: Config) -> CmdResult {
    match cmd {
        Command::Migrate => {
            crate::app::open_store(&cfg).await?;
            println!("database {} is up to date", cfg.database.url);
            Ok(())
        }
        Command::Serve => {
            let token = tokio_util::sync::CancellationToken::new();
            crate::app::cancel_on_signals(token.clone());
            crate::app::serve(cfg, token).await.map_err(Failure::from)
        }
        Command::Route(c) => admin::route(&cfg, c).await,
        Command::Org(c) => admin::org(&cfg, c).await,
        Command::Contact(c) => admin::contact(&cfg, c).await,
        Command::Case(c) => admin::case(&cfg, c).await,
        Command::Report(c) => admin::report(&cfg, c).await,
        Command::Post(a) => mailcmd::post(&cfg, a).await,
        Command::Quarantine(c) => mailcmd::quarantine(&cfg, c).await,
        Command::Outbox(c) => mailcmd::outbox(&cfg, c).await,
        Command::Keys(c) => keys::keys(&cfg, c).await,
        Command::Digest(c) => mailcmd::digest(&cfg, c).await,
        Command::Schedule(c) => mailcmd::schedule(&cfg, c).await,
        Command::Imap(c) => imapcmd::imap(&cfg, c).await,
        Command::Bench(c) => bench::bench(&cfg, c).await,
        Command::Init { .. } | Command::Demo { .. } | Command::Db(_) | Command::CheckConfig | Command::Deliver { .. } => Ok(()),
    }
}
