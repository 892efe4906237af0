//! Stage 1 for a mail over the size limit: its bytes stored in chunks as they are read, so
//! that it is never held whole in memory (SPEC §3).

use super::inbound::{Attempt, Stored};
use super::{Result, Store};
use sha2::{Digest, Sha256};
use std::io::Read;

/// Bytes per stored chunk.
pub const CHUNK_BYTES: usize = 1024 * 1024;

impl Store {
    /// Stores `head` and then everything `rest` yields, chunk by chunk, in one transaction;
    /// `inbound_messages.raw` keeps the first chunk. The same bytes processed before are
    /// `Done` (nothing is kept twice). Returns the outcome and the whole mail's size.
    pub async fn store_chunked(
        &self,
        head: &[u8],
        rest: &mut (dyn Read + Send),
        message_id: Option<&str>,
        source: (&str, &str),
        attempt: &Attempt<'_>,
    ) -> Result<(Stored, u64)> {
        let mut tx = self.begin_write().await?;
        let first = &head[..head.len().min(CHUNK_BYTES)];
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO inbound_messages (raw, size, sha256, message_id, source, source_ref, received_at, attempts, attempt_holder, attempt_until)
             VALUES ($1, 0, '', $2, $3, $4, $5, 1, $6, $7) RETURNING id",
        )
        .bind(first)
        .bind(message_id)
        .bind(source.0)
        .bind(source.1)
        .bind(attempt.now)
        .bind(attempt.holder)
        .bind(attempt.until)
        .fetch_one(&mut *tx)
        .await?;
        let (mut hash, mut size, mut seq) = (Sha256::new(), 0u64, 0i64);
        let mut all = head.chain(rest);
        for chunk in ChunkReader(&mut all) {
            let chunk = chunk
                .map_err(|e| super::StoreError::Invalid(format!("cannot read the mail: {e}")))?;
            hash.update(&chunk);
            size += chunk.len() as u64;
            sqlx::query("INSERT INTO inbound_chunks (inbound_id, seq, bytes) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(seq)
                .bind(&chunk)
                .execute(&mut *tx)
                .await?;
            seq += 1;
        }
        let sha = hex::encode(hash.finalize());
        let prior: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM inbound_messages WHERE sha256 = $1 AND state = 'processed' LIMIT 1",
        )
        .bind(&sha)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(prior) = prior {
            drop(tx);
            return Ok((Stored::Done(prior), size));
        }
        sqlx::query("UPDATE inbound_messages SET size = $1, sha256 = $2 WHERE id = $3")
            .bind(size as i64)
            .bind(&sha)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((Stored::Fresh(id), size))
    }
}

/// A reader as an iterator of chunks of at most [`CHUNK_BYTES`].
struct ChunkReader<'r, R: Read>(&'r mut R);

impl<R: Read> Iterator for ChunkReader<'_, R> {
    type Item = std::io::Result<Vec<u8>>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        match self
            .0
            .by_ref()
            .take(CHUNK_BYTES as u64)
            .read_to_end(&mut chunk)
        {
            Ok(0) => None,
            Ok(_) => Some(Ok(chunk)),
            Err(e) => Some(Err(e)),
        }
    }
}
