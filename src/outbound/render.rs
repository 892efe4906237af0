//! Rendering claimed outbox items before they are sent: items stored as decisions get their
//! bytes here, from the world as it is now (docs/architecture.md, "Deliveries"). CPU work
//! (rendering, signing, encrypting) runs on the blocking pool.

use crate::compose::Composer;
use crate::model::OutboxKind;
use crate::outgoing;
use crate::render::Rendered;
use crate::store::outbox::OutboxItem;
use crate::stages::Stage;
use crate::store::{now_ms, Store, StoreError};
use std::sync::Arc;

/// Render the claimed items that need it, keep their bytes, and return the items to send.
/// Items that cannot be rendered for their recipient are marked `failed` and left out.
pub(crate) async fn render_claimed(store: &Store, composer: &Arc<Composer>, items: Vec<OutboxItem>) -> Result<Vec<OutboxItem>, StoreError> {
    let todo: Vec<_> = items.iter().filter(|i| i.needs_rendering()).filter_map(OutboxItem::decided).collect();
    if todo.is_empty() {
        return Ok(items);
    }
    store.refresh_keyring(&composer.pgp).await?;
    let ctx = store.render_context(&todo, now_ms()).await?;
    let c = composer.clone();
    type Outcome = (i64, Result<(OutboxKind, Rendered), &'static str>);
    let rendered: Vec<Outcome> = render_on_blocking_pool(c, todo, ctx).await?;
    let keep: Vec<(i64, OutboxKind, &Rendered)> = rendered.iter().filter_map(|(id, r)| r.as_ref().ok().map(|(k, r)| (*id, *k, r))).collect();
    store.store_rendered(&keep).await?;
    let rendered: std::collections::HashMap<i64, Result<(OutboxKind, Rendered), &'static str>> = rendered.into_iter().collect();
    let mut out = Vec::with_capacity(items.len());
    for mut item in items {
        if !item.needs_rendering() {
            out.push(item);
            continue;
        }
        match rendered.get(&item.id) {
            Some(Ok((kind, r))) => {
                item.kind = kind.as_str().to_string();
                item.envelope_from = r.envelope_from.clone();
                item.bytes = r.bytes.clone();
                out.push(item);
            }
            Some(Err(why)) => {
                tracing::warn!(outbox_id = item.id, rcpt = %item.rcpt, "{why}");
                store.mark_outbox_dropped(item.id, why, now_ms()).await?;
            }
            None => {
                let why = "not sent: an outbox item of a kind this version does not know";
                tracing::warn!(outbox_id = item.id, rcpt = %item.rcpt, "{why}");
                store.mark_outbox_dropped(item.id, why, now_ms()).await?;
            }
        }
    }
    Ok(out)
}

/// Rendering and sealing are CPU work: the items are split over the blocking pool, one
/// share per core, so that signing and encrypting a large fan-out uses every core.
async fn render_on_blocking_pool(
    composer: Arc<Composer>,
    todo: Vec<crate::delivery::Decided>,
    ctx: outgoing::RenderCtx,
) -> Result<Vec<(i64, Result<(OutboxKind, Rendered), &'static str>)>, StoreError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = todo.len().div_ceil(cores).max(8);
    let (ctx, todo) = (Arc::new(ctx), Arc::new(todo));
    let mut tasks = Vec::new();
    for start in (0..todo.len()).step_by(share) {
        let (c, ctx, todo) = (composer.clone(), ctx.clone(), todo.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            let end = (start + share).min(todo.len());
            todo[start..end]
                .iter()
                .map(|d| (d.id, Stage::Render.time(|| outgoing::render(&c, d, &ctx)).ok_or_else(|| outgoing::dropped_because(d, &ctx))))
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::with_capacity(todo.len());
    for t in tasks {
        out.extend(t.await.map_err(|e| StoreError::Invalid(format!("rendering failed: {e}")))?);
    }
    Ok(out)
}
