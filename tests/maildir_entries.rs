//! The Maildir source reads only regular files from `new/`. Whatever else appears there — a
//! symlink (to another user's mail, to a secret), a fifo (a read that never ends), a
//! directory, a device node — is never opened for reading, never ingested: it is moved
//! aside to `.casegate-rejected/` beside `cur/`, and the regular mail beside it is
//! ingested as usual.

mod support;

use casegate::ingest::maildir;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;
use tokio_util::sync::CancellationToken;

const WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
"#;

fn report(tag: &str) -> String {
    format!("From: R <r@reporters.example>\r\nTo: security@cert.example\r\nSubject: {tag}\r\nMessage-ID: <{tag}@reporters.example>\r\n\r\n{tag}\r\n")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("run mkfifo (Debian package coreutils)");
    assert!(st.success());
}

/// A character device like /dev/null (major 1, minor 3); creating one needs root.
fn mknod_null(path: &Path) {
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    assert!(root, "this test creates a device node in new/ with mknod, which needs root: run the tests as root");
    let st = Command::new("mknod").arg(path).args(["c", "1", "3"]).status().expect("run mknod (Debian package coreutils)");
    assert!(st.success(), "mknod failed: the test needs CAP_MKNOD");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_regular_files_in_new_are_read_the_rest_is_moved_aside() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let g = support::gateway(&world).await;
    let md = g.dir.path().join("maildir");
    maildir::ensure(&md).unwrap();
    let new = md.join("new");
    // A mail-shaped file outside the Maildir that a symlink points at.
    let outside = g.dir.path().join("someone-elses-mail");
    std::fs::write(&outside, report("outside")).unwrap();
    std::fs::write(new.join("1700000001.M1P1.host"), report("regular")).unwrap();
    std::os::unix::fs::symlink(&outside, new.join("1700000002.M1P1.host")).unwrap();
    mkfifo(&new.join("1700000003.M1P1.host"));
    std::fs::create_dir(new.join("1700000004.M1P1.host")).unwrap();
    std::fs::write(new.join("1700000004.M1P1.host").join("inner"), report("inner")).unwrap();
    mknod_null(&new.join("1700000005.M1P1.host"));

    // A fifo with no writer would block a blocking read forever: bound the scan.
    let token = CancellationToken::new();
    let scan = maildir::scan(&g.pipeline, &md, &token);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(30), scan)
        .await
        .expect("the scan finishes (nothing in new/ blocks it)")
        .unwrap();

    let ingested: Vec<String> = sqlx::query_scalar("SELECT message_id FROM inbound_messages ORDER BY id")
        .fetch_all(&g.store.pool)
        .await
        .unwrap();
    assert_eq!(ingested, vec!["regular@reporters.example".to_string()], "only the regular file is ingested");
    assert_eq!(summary.ingested, 1);
    assert_eq!(names(&new), Vec::<String>::new(), "new/ is emptied");
    assert_eq!(names(&md.join("cur")), vec!["1700000001.M1P1.host:2,S".to_string()]);
    let rejected = md.join(".casegate-rejected");
    assert_eq!(
        names(&rejected),
        ["1700000002.M1P1.host", "1700000003.M1P1.host", "1700000004.M1P1.host", "1700000005.M1P1.host"].map(String::from).to_vec(),
        "everything else is moved aside"
    );
    let kind = |n: &str| std::fs::symlink_metadata(rejected.join(n)).unwrap().file_type();
    assert!(kind("1700000002.M1P1.host").is_symlink(), "moved as it was, not its target");
    assert!(kind("1700000003.M1P1.host").is_fifo());
    assert!(kind("1700000004.M1P1.host").is_dir());
    assert!(kind("1700000005.M1P1.host").is_char_device());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), report("outside"), "the symlink's target is left alone");

    // A later scan finds nothing more to do.
    let again = maildir::scan(&g.pipeline, &md, &CancellationToken::new()).await.unwrap();
    assert_eq!((again.ingested, again.deferred), (0, 0));
}
