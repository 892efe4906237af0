//! Notify mode `digest`: the contact gets no message per post, then one digest per case
//! with every queued post as they may see it; sending again sends nothing.

mod support;

const WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
trusted_authserv_ids = ["mx.cert.example"]
[[org]]
name = "CERT Team"
kind = "coordinator"
domains = ["cert.example"]
[[org]]
name = "Acme"
kind = "vendor"
domains = ["acme.example"]
[[org]]
name = "Globex"
kind = "vendor"
domains = ["globex.example"]
[[contact]]
email = "cora@cert.example"
org = "CERT Team"
[[contact]]
email = "alice@acme.example"
name = "Alice Acme"
org = "Acme"
notify = "digest"
[[contact]]
email = "bob@globex.example"
name = "Bob Globex"
org = "Globex"
[[case]]
id = "VU#777777"
title = "Digest case"
participants = [ { org = "Acme", role = "vendor" }, { org = "Globex", role = "vendor", anonymous = true, alias = "Vendor B" } ]
"#;

fn mail(i: u32, body: &str) -> String {
    format!(
        "From: Bob Globex <bob@globex.example>\r\nTo: cases+vu777777@cert.example\r\nSubject: Re: [VU#777777] n{i}\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from=globex.example\r\n\
         Message-ID: <d{i}@globex.example>\r\n\r\n{body}\r\n"
    )
}

#[tokio::test]
async fn digest_readers_get_one_redacted_message_per_case() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let g = support::gateway(&world).await;
    for (i, body) in [(1, "First finding from Bob Globex."), (2, "Second: globex.example builds are affected.")] {
        let o = g.pipeline.ingest(mail(i, body).as_bytes(), "test", "t").await.unwrap();
        assert_eq!(o.decision, "post", "{o:?}");
        assert_eq!(o.recipients, vec!["cora@cert.example".to_string()], "alice gets no message per post");
    }
    let s = casegate::digest::send_digests(&g.store, &g.pipeline.composer).await.unwrap();
    assert_eq!((s.messages, s.posts, s.dropped), (1, 2, 0));
    support::send(&g).await;
    let items = g.store.list_outbox(None, 100).await.unwrap();
    let digest: Vec<_> = items.iter().filter(|i| i.kind == "digest").collect();
    assert_eq!(digest.len(), 1);
    assert_eq!(digest[0].rcpt, "alice@acme.example");
    let bytes: Vec<u8> = sqlx::query_scalar("SELECT bytes FROM outbox WHERE id = $1").bind(digest[0].id).fetch_one(&g.store.pool).await.unwrap();
    let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    let text = m.body_text(0).unwrap().to_string();
    assert!(text.contains("First finding from Vendor B."), "{text}");
    assert!(text.contains("Second: Vendor B builds are affected."), "{text}");
    let raw = String::from_utf8_lossy(&bytes).to_lowercase();
    assert!(!raw.contains("globex") && !raw.contains("bob"), "the anonymous vendor leaks into the digest");
    let again = casegate::digest::send_digests(&g.store, &g.pipeline.composer).await.unwrap();
    assert_eq!(again.messages, 0, "nothing is sent twice");
}
