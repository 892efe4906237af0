//! IMAP source state: the checkpoint of each mailbox (UIDVALIDITY, the skip floor, the last
//! committed UID) and the lease that lets one instance at a time poll a mailbox (SPEC §9).

use super::{Result, Store};

/// Where casegate stands in one mailbox. UIDs are `u32` on the wire (RFC 3501 §2.3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Checkpoint {
    pub uidvalidity: u32,
    /// Mail with a UID at or below this is left alone (`backlog = "skip"`).
    pub floor_uid: u32,
    /// The highest UID whose mail, and every earlier mail above the floor, is committed.
    pub last_uid: u32,
}

/// The current holder of a mailbox lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    pub holder: String,
    pub acquired_at: i64,
    pub expires_at: i64,
}

fn uid(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

impl Store {
    /// The checkpoint of a mailbox; `None` before the first contact.
    pub async fn imap_checkpoint(
        &self,
        account: &str,
        mailbox: &str,
    ) -> Result<Option<Checkpoint>> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT uidvalidity, floor_uid, last_uid FROM imap_checkpoints WHERE account = $1 AND mailbox = $2",
        )
        .bind(account)
        .bind(mailbox)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(v, f, l)| Checkpoint {
            uidvalidity: uid(v),
            floor_uid: uid(f),
            last_uid: uid(l),
        }))
    }

    /// Write a whole checkpoint: the first contact, or a new UIDVALIDITY (a re-scan).
    pub async fn imap_set_checkpoint(
        &self,
        account: &str,
        mailbox: &str,
        cp: Checkpoint,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO imap_checkpoints (account, mailbox, uidvalidity, floor_uid, last_uid, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (account, mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity,
               floor_uid = excluded.floor_uid, last_uid = excluded.last_uid, updated_at = excluded.updated_at",
        )
        .bind(account)
        .bind(mailbox)
        .bind(i64::from(cp.uidvalidity))
        .bind(i64::from(cp.floor_uid))
        .bind(i64::from(cp.last_uid))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Raise `last_uid` (never lower it) while the UIDVALIDITY is still `uidvalidity`.
    pub async fn imap_advance_checkpoint(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
        last_uid: u32,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE imap_checkpoints SET last_uid = $1, updated_at = $2
             WHERE account = $3 AND mailbox = $4 AND uidvalidity = $5 AND last_uid < $1",
        )
        .bind(i64::from(last_uid))
        .bind(now_ms)
        .bind(account)
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Take or renew the lease of a mailbox for `holder` until `now_ms + ttl_ms`. It is granted
    /// when nobody holds it, `holder` already does, the current lease has expired, or the
    /// current holder is `dead_holder` (one the caller knows to be gone). True when granted.
    pub async fn imap_claim_lease(
        &self,
        account: &str,
        mailbox: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
        dead_holder: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO imap_leases (account, mailbox, holder, acquired_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account, mailbox) DO UPDATE SET
               acquired_at = CASE WHEN imap_leases.holder = excluded.holder
                                  THEN imap_leases.acquired_at ELSE excluded.acquired_at END,
               holder = excluded.holder, expires_at = excluded.expires_at
             WHERE imap_leases.holder = excluded.holder OR imap_leases.expires_at <= $4
                OR imap_leases.holder = $6",
        )
        .bind(account)
        .bind(mailbox)
        .bind(holder)
        .bind(now_ms)
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(dead_holder.unwrap_or(""))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The lease of a mailbox, if any instance ever took it.
    pub async fn imap_lease(&self, account: &str, mailbox: &str) -> Result<Option<Lease>> {
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT holder, acquired_at, expires_at FROM imap_leases WHERE account = $1 AND mailbox = $2",
        )
        .bind(account)
        .bind(mailbox)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(holder, acquired_at, expires_at)| Lease {
            holder,
            acquired_at,
            expires_at,
        }))
    }

    /// Give the lease up (on shutdown) so that another instance takes over at once.
    pub async fn imap_release_lease(
        &self,
        account: &str,
        mailbox: &str,
        holder: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM imap_leases WHERE account = $1 AND mailbox = $2 AND holder = $3")
            .bind(account)
            .bind(mailbox)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACC: &str = "imap://gw@127.0.0.1:143";

    async fn store() -> Store {
        Store::open("sqlite::memory:").await.expect("open")
    }

    #[tokio::test]
    async fn checkpoint_is_written_and_only_raised() {
        let s = store().await;
        assert_eq!(s.imap_checkpoint(ACC, "INBOX").await.unwrap(), None);
        let cp = Checkpoint {
            uidvalidity: 7,
            floor_uid: 3,
            last_uid: 3,
        };
        s.imap_set_checkpoint(ACC, "INBOX", cp, 1).await.unwrap();
        s.imap_advance_checkpoint(ACC, "INBOX", 7, 10, 2)
            .await
            .unwrap();
        s.imap_advance_checkpoint(ACC, "INBOX", 7, 8, 3)
            .await
            .unwrap();
        s.imap_advance_checkpoint(ACC, "INBOX", 6, 50, 4)
            .await
            .unwrap();
        let got = s.imap_checkpoint(ACC, "INBOX").await.unwrap().unwrap();
        assert_eq!(
            got,
            Checkpoint {
                uidvalidity: 7,
                floor_uid: 3,
                last_uid: 10
            },
            "old UIDVALIDITY ignored"
        );
        let fresh = Checkpoint {
            uidvalidity: 9,
            floor_uid: 0,
            last_uid: 0,
        };
        s.imap_set_checkpoint(ACC, "INBOX", fresh, 5).await.unwrap();
        assert_eq!(s.imap_checkpoint(ACC, "INBOX").await.unwrap(), Some(fresh));
        assert_eq!(s.imap_checkpoint(ACC, "Other").await.unwrap(), None);
        s.imap_advance_checkpoint(ACC, "INBOX", u32::MAX, u32::MAX, 6)
            .await
            .unwrap();
    }

    async fn claim(s: &Store, mailbox: &str, holder: &str, now: i64, dead: Option<&str>) -> bool {
        s.imap_claim_lease(ACC, mailbox, holder, now, 100, dead)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn lease_is_exclusive_until_it_expires_or_its_holder_is_dead() {
        let s = store().await;
        assert!(claim(&s, "INBOX", "a", 1000, None).await);
        assert!(!claim(&s, "INBOX", "b", 1050, None).await);
        assert!(claim(&s, "INBOX", "a", 1080, None).await, "renewal");
        let l = s.imap_lease(ACC, "INBOX").await.unwrap().unwrap();
        assert_eq!(
            l,
            Lease {
                holder: "a".into(),
                acquired_at: 1000,
                expires_at: 1180
            }
        );
        assert!(!claim(&s, "INBOX", "b", 1179, None).await);
        assert!(
            !claim(&s, "INBOX", "b", 1100, Some("c")).await,
            "c is not the holder"
        );
        assert!(
            claim(&s, "INBOX", "b", 1100, Some("a")).await,
            "dead holder"
        );
        assert!(!claim(&s, "INBOX", "a", 1150, None).await, "a lost it");
        assert!(claim(&s, "INBOX", "a", 1200, None).await, "b expired");
        assert!(claim(&s, "Other", "b", 1200, None).await, "per mailbox");
    }

    #[tokio::test]
    async fn only_the_holder_releases_a_lease() {
        let s = store().await;
        assert!(claim(&s, "INBOX", "a", 1000, None).await);
        s.imap_release_lease(ACC, "INBOX", "b").await.unwrap();
        assert!(
            s.imap_lease(ACC, "INBOX").await.unwrap().is_some(),
            "b cannot release a's lease"
        );
        s.imap_release_lease(ACC, "INBOX", "a").await.unwrap();
        assert_eq!(s.imap_lease(ACC, "INBOX").await.unwrap(), None);
        assert!(claim(&s, "INBOX", "b", 1001, None).await, "free at once");
    }
}
