//! Time spent in each processing stage, summed over the process since the last reset: what
//! `casegate bench` prints so that the next bottleneck is visible (SPEC §11). Stages that
//! run at the same time (several mails, several sends) add up: the figures are busy time,
//! not wall-clock time. Recording costs two clock reads and two atomic additions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A stage of a mail's way through the gateway, inbound then outbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The MIME parse of the inbound mail.
    Parse,
    /// Opening OpenPGP protection: replay check, decryption, verification.
    Open,
    /// Evidence from the database (duplicates, threading, the world) and the routing decision.
    Route,
    /// The deliveries of a post: who receives what (the audience), before the transaction.
    Decide,
    /// The write transaction: the post, its deliveries, the decision.
    Store,
    /// Rendering and sealing (signing, encrypting) claimed outbox items.
    Render,
    /// Handing messages to the transport (SMTP or sendmail) and recording the outcome.
    Send,
}

const ALL: [Stage; 7] = [Stage::Parse, Stage::Open, Stage::Route, Stage::Decide, Stage::Store, Stage::Render, Stage::Send];

/// Busy nanoseconds and counts per stage.
struct Totals {
    nanos: [AtomicU64; 7],
    counts: [AtomicU64; 7],
}

impl Totals {
    const fn new() -> Totals {
        Totals { nanos: [const { AtomicU64::new(0) }; 7], counts: [const { AtomicU64::new(0) }; 7] }
    }

    fn add(&self, stage: Stage, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.nanos[stage.index()].fetch_add(nanos, Ordering::Relaxed);
        self.counts[stage.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn totals(&self) -> Vec<StageTotal> {
        ALL.iter()
            .map(|s| StageTotal {
                stage: s.name(),
                busy_secs: self.nanos[s.index()].load(Ordering::Relaxed) as f64 / 1e9,
                count: self.counts[s.index()].load(Ordering::Relaxed),
            })
            .collect()
    }

    fn reset(&self) {
        for i in 0..ALL.len() {
            self.nanos[i].store(0, Ordering::Relaxed);
            self.counts[i].store(0, Ordering::Relaxed);
        }
    }
}

static PROCESS: Totals = Totals::new();

impl Stage {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Open => "open",
            Stage::Route => "route",
            Stage::Decide => "decide",
            Stage::Store => "store",
            Stage::Render => "render+seal",
            Stage::Send => "send",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn add(self, elapsed: Duration) {
        PROCESS.add(self, elapsed);
    }

    /// Run `f`, counting its time to this stage.
    pub(crate) fn time<T>(self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.add(start.elapsed());
        out
    }

    /// Await `f`, counting its time to this stage.
    pub(crate) async fn time_async<T>(self, f: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        self.add(start.elapsed());
        out
    }
}

/// One stage's totals.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct StageTotal {
    pub stage: &'static str,
    pub busy_secs: f64,
    pub count: u64,
}

/// The totals since the last [`reset`], in stage order.
pub(crate) fn totals() -> Vec<StageTotal> {
    PROCESS.totals()
}

pub(crate) fn reset() {
    PROCESS.reset();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_add_up_and_reset() {
        let totals = Totals::new();
        totals.add(Stage::Parse, Duration::from_millis(3));
        totals.add(Stage::Parse, Duration::from_millis(2));
        totals.add(Stage::Send, Duration::from_micros(1));
        let t = totals.totals();
        assert_eq!(t.iter().map(|s| s.stage).collect::<Vec<_>>(), ["parse", "open", "route", "decide", "store", "render+seal", "send"]);
        assert_eq!((t[0].count, t[6].count, t[1].count), (2, 1, 0));
        assert!((t[0].busy_secs - 0.005).abs() < 1e-9, "{t:?}");
        totals.reset();
        assert!(totals.totals().iter().all(|s| s.count == 0 && s.busy_secs == 0.0));
        assert_eq!(Stage::Route.time(|| 7), 7, "a timed closure's value is passed on");
    }
}
