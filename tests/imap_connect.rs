//! Connecting to a real Dovecot: implicit TLS and STARTTLS checked against a private CA,
//! LOGIN and AUTHENTICATE PLAIN, `casegate imap check` and its failures, an authentication
//! failure that is retried slowly while the outbox worker keeps sending, and the
//! acknowledgements used when the server has no MOVE.

mod dovecot;
mod imap_world;
mod support;

use casegate::config::ImapMailbox;
use casegate::ingest::imap::ack::{self, Strategy, Target};
use casegate::ingest::imap::{connect, Source};
use dovecot::{append, count, wait_until, USER};
use imap_world::{reply, report, Setup};
use std::sync::Arc;
use std::time::Duration;

fn section(s: &Setup, host: &str, port: u16, tls: &str, extra: &str) -> String {
    format!(
        "[imap]\nhost = \"{host}\"\nport = {port}\ntls = \"{tls}\"\nusername = \"{USER}\"\npassword_file = \"{}\"\n{extra}",
        s.dovecot.password_file().display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn imap_check_over_tls_and_starttls() {
    let s = Setup::new().await;
    let ca = format!("ca_file = \"{}\"\n", s.dovecot.ca_file().display());
    let tls = s.configure_raw(&section(
        &s,
        "localhost",
        s.dovecot.tls_port,
        "tls",
        &format!("{ca}auth = \"plain\"\n"),
    ));
    let (code, out, err) = s.casegate(&tls, &["imap", "check"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("connected (tls), authenticated (plain)"),
        "{out}"
    );
    assert!(
        out.contains("mailbox \"INBOX\": UIDVALIDITY ")
            && out.contains("IDLE yes, MOVE yes, UIDPLUS yes"),
        "{out}"
    );
    assert!(
        out.contains("Processed folder: missing (created by serve)"),
        "{out}"
    );

    let starttls = s.configure_raw(&section(&s, "127.0.0.1", s.dovecot.port, "starttls", &ca));
    let (code, out, err) = s.casegate(&starttls, &["imap", "check", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["tls"], "starttls");
    assert_eq!(report["auth"], "login");
    assert_eq!(report["mailboxes"][0]["name"], "INBOX");
    assert!(report["mailboxes"][0]["uidvalidity"].as_u64().unwrap() > 0);

    // And serve over TLS ingests.
    let config = s.configure_raw(&section(
        &s,
        "localhost",
        s.dovecot.tls_port,
        "tls",
        &format!("{ca}backlog = \"process\"\n"),
    ));
    let mut serve = s.serve(&config);
    let mut c = s.dovecot.client().await;
    append(&mut c, "INBOX", &reply(1)).await;
    s.wait_processed(1, &serve).await;
    s.wait_folders((0, 1, 0)).await;
    assert_eq!(serve.terminate(), Some(0));
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn imap_check_says_what_is_wrong() {
    let s = Setup::new().await;
    // The certificate is signed by a CA the system does not trust.
    let untrusted = s.configure_raw(&section(&s, "localhost", s.dovecot.tls_port, "tls", ""));
    let (code, _, err) = s.casegate(&untrusted, &["imap", "check"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("TLS with localhost") && err.contains("certificate"),
        "{err}"
    );

    std::fs::write(s.gw.dir.path().join("wrong"), "not the password\n").unwrap();
    let wrong = s.configure_raw(&format!(
        "[imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{USER}\"\npassword_file = \"wrong\"\n",
        s.dovecot.port
    ));
    let (code, _, err) = s.casegate(&wrong, &["imap", "check"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("authentication as \"gw\" (login) refused"),
        "{err}"
    );

    let missing = s.configure("[[imap.mailbox]]\nname = \"No such folder\"\n");
    let (code, out, err) = s.casegate(&missing, &["imap", "check"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains("No such folder: cannot open the mailbox"),
        "{err}"
    );

    let closed = dovecot::Dovecot::start();
    let port = closed.port;
    drop(closed);
    let refused = s.configure_raw(&format!(
        "[imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nusername = \"{USER}\"\npassword_file = \"wrong\"\n"
    ));
    let (code, _, err) = s.casegate(&refused, &["imap", "check"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot connect to 127.0.0.1:"), "{err}");

    let no_imap = s.configure_raw("");
    let (code, _, err) = s.casegate(&no_imap, &["imap", "check"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no [imap] section"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_are_retried_slowly_while_the_outbox_is_sent() {
    let s = Setup::new().await;
    std::fs::write(s.gw.dir.path().join("wrong"), "not the password\n").unwrap();
    let config = s.configure_raw(&format!(
        "[imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{USER}\"\npassword_file = \"wrong\"\n",
        s.dovecot.port
    ));
    let mut serve = s.serve(&config);
    wait_until("the failure logged", Duration::from_secs(30), || async {
        serve.log_text().contains("authentication failed")
    })
    .await;
    // A mail delivered another way is still notified: the outbox worker runs.
    let file = s.gw.dir.path().join("report.eml");
    std::fs::write(&file, report(7)).unwrap();
    let (code, out, err) = s.casegate(&config, &["deliver", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let outbox = s.gw.dir.path().join("outbox");
    wait_until(
        "the acknowledgement and notification written",
        Duration::from_secs(40),
        || async { std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0) == 2 },
    )
    .await;
    let log = serve.log_text();
    assert_eq!(
        log.matches("authentication failed").count(),
        1,
        "not hammered:\n{log}"
    );
    assert!(
        log.contains("retry_in_secs=") && log.contains("(login) refused"),
        "{log}"
    );
    assert!(!serve.exited(), "serve keeps running");
    assert_eq!(serve.terminate(), Some(0));
}

/// The IMAP source of `s`'s config, connected and with INBOX selected, and 4 mails in INBOX.
async fn source_with_mail(s: &Setup) -> (Source, ImapMailbox, connect::Connection) {
    let config = s.configure("");
    let imap = casegate::config::Config::load(&config)
        .unwrap()
        .imap
        .unwrap();
    let mailbox = imap.mailboxes[0].clone();
    let wake = Arc::new(tokio::sync::Notify::new());
    let source = Source::new(s.gw.pipeline.clone(), imap.clone(), wake).unwrap();
    let mut conn = connect::open(&imap, None).await.unwrap();
    let t = Duration::from_secs(10);
    for _ in 0..2 {
        // Twice: the second finds the folders.
        ack::ensure_folders(&mut conn.session, &mailbox, Strategy::CopyExpunge, t)
            .await
            .unwrap();
    }
    let mut c = s.dovecot.client().await;
    for i in 0..4 {
        append(&mut c, "INBOX", &reply(i)).await;
    }
    let _ = c.logout().await;
    conn.session.select("INBOX").await.unwrap();
    (source, mailbox, conn)
}

#[tokio::test(flavor = "multi_thread")]
async fn without_move_mail_is_copied_flagged_and_expunged() {
    let s = Setup::new().await;
    let (source, mailbox, mut conn) = source_with_mail(&s).await;
    let done = [(1, Target::Processed), (2, Target::Quarantine)];
    ack::acknowledge(
        &source,
        &mut conn.session,
        &mailbox,
        Strategy::CopyExpunge,
        &done,
    )
    .await
    .unwrap();
    let mut c = s.dovecot.client().await;
    assert_eq!(
        count(&mut c, "INBOX").await.0,
        2,
        "UID EXPUNGE removed exactly those two"
    );
    assert_eq!(count(&mut c, "Processed").await.0, 1);
    assert_eq!(count(&mut c, "Quarantine").await.0, 1);
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_move_or_uidplus_mail_is_copied_and_flagged_deleted() {
    let s = Setup::new().await;
    let (source, mailbox, mut conn) = source_with_mail(&s).await;
    let done = [(3, Target::Processed)];
    ack::acknowledge(
        &source,
        &mut conn.session,
        &mailbox,
        Strategy::CopyDelete,
        &done,
    )
    .await
    .unwrap();
    let mut c = s.dovecot.client().await;
    assert_eq!(
        count(&mut c, "INBOX").await.0,
        4,
        "left for others to expunge"
    );
    assert_eq!(count(&mut c, "Processed").await.0, 1);
    let undeleted = conn.session.uid_search("UID 1:* UNDELETED").await.unwrap();
    let mut undeleted: Vec<u32> = undeleted.into_iter().collect();
    undeleted.sort_unstable();
    assert_eq!(undeleted, vec![1, 2, 4], "searches skip the \\Deleted one");
    let done = [(4, Target::Processed)];
    ack::acknowledge(
        &source,
        &mut conn.session,
        &mailbox,
        Strategy::Keyword,
        &done,
    )
    .await
    .unwrap();
    let kw = format!("KEYWORD {}", source.cfg.keyword);
    assert_eq!(
        conn.session
            .uid_search(&kw)
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![4]
    );
    let _ = conn.session.logout().await;
    let _ = c.logout().await;
}

/// A scripted IMAP server for one connection: AUTHENTICATE XOAUTH2 as Gmail and Microsoft
/// 365 do it. With `accept`, the token is taken; else the server sends its JSON error
/// challenge, expects the empty answer and says NO. What the client sent comes back.
fn xoauth2_server(accept: bool) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream).lines().map_while(Result::ok);
        let mut seen = Vec::new();
        out.write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready\r\n")
            .unwrap();
        let command = lines.next().unwrap();
        let tag = command.split(' ').next().unwrap().to_string();
        seen.push(command);
        out.write_all(b"+ \r\n").unwrap();
        seen.push(lines.next().unwrap());
        if !accept {
            // {"status":"401","schemes":"bearer"}
            out.write_all(b"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n")
                .unwrap();
            seen.push(lines.next().unwrap());
            out.write_all(
                format!("{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n").as_bytes(),
            )
            .unwrap();
            return seen;
        }
        out.write_all(format!("{tag} OK authenticated\r\n").as_bytes())
            .unwrap();
        let capability = lines.next().unwrap();
        let tag = capability.split(' ').next().unwrap().to_string();
        seen.push(capability);
        out.write_all(format!("* CAPABILITY IMAP4rev1 IDLE MOVE\r\n{tag} OK done\r\n").as_bytes())
            .unwrap();
        seen
    });
    (port, handle)
}

fn xoauth2_config(dir: &std::path::Path, port: u16) -> casegate::config::ImapConfig {
    std::fs::write(dir.join("secret.key"), support::SECRET).unwrap();
    std::fs::write(dir.join("token"), "ya29.a0-token\n").unwrap();
    let text = format!(
        "[gateway]\ndomain = \"cert.example\"\nsecret_file = \"secret.key\"\n[outbound]\nfile_dir = \"out\"\n\
         [imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nusername = \"security@cert.example\"\n\
         auth = \"xoauth2\"\noauth2_token_file = \"token\"\n"
    );
    let cfg = casegate::config::Config::from_toml_str(&text, dir, &dir.join("c.toml")).unwrap();
    cfg.imap.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn xoauth2_sends_the_bearer_token_and_reads_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let b64 = |s: &str| data_encoding::BASE64.encode(s.as_bytes());
    let want = b64("user=security@cert.example\x01auth=Bearer ya29.a0-token\x01\x01");

    let (port, server) = xoauth2_server(true);
    let conn = connect::open(&xoauth2_config(dir.path(), port), None)
        .await
        .expect("accepted");
    assert!(conn.caps.idle && conn.caps.moves && !conn.caps.uidplus);
    let seen = server.join().unwrap();
    assert!(seen[0].ends_with(" AUTHENTICATE XOAUTH2"), "{seen:?}");
    assert_eq!(seen[1], want);
    assert!(seen[2].ends_with(" CAPABILITY"), "{seen:?}");

    let (port, server) = xoauth2_server(false);
    let err = connect::open(&xoauth2_config(dir.path(), port), None)
        .await
        .expect_err("refused");
    assert!(err.is_auth(), "{err}");
    assert!(
        err.to_string().contains("(xoauth2) refused")
            && err.to_string().contains("AUTHENTICATIONFAILED"),
        "{err}"
    );
    let seen = server.join().unwrap();
    assert_eq!(seen[1], want);
    assert_eq!(
        seen[2], "",
        "the error challenge is answered with an empty line"
    );
}
