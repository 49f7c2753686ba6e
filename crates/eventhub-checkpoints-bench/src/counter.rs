//! Counts the HTTP requests our backend makes, by method and status, from
//! its `trace`-level "blob request" events (target
//! `eventhub_checkpoints_blob`). Used for the untimed verification pass
//! only: once [`stop`] is called, every callsite is disabled again and
//! costs what it costs with no subscriber at all.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber, span};

const TARGET: &str = "eventhub_checkpoints_blob";

struct Counter {
    on: AtomicBool,
    counts: Mutex<BTreeMap<String, u64>>,
}

fn counter() -> &'static Counter {
    static COUNTER: OnceLock<Counter> = OnceLock::new();
    COUNTER.get_or_init(|| Counter {
        on: AtomicBool::new(false),
        counts: Mutex::new(BTreeMap::new()),
    })
}

/// A `&'static` subscriber that forwards to the counter.
struct Handle(&'static Counter);

impl Counter {
    fn wants(&self, metadata: &Metadata<'_>) -> bool {
        self.on.load(Ordering::Relaxed) && metadata.is_event() && metadata.target().starts_with(TARGET)
    }
}

impl Subscriber for Handle {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.0.wants(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.wants(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(if self.0.on.load(Ordering::Relaxed) {
            LevelFilter::TRACE
        } else {
            LevelFilter::OFF
        })
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message.as_deref() == Some("blob request") {
            let key = format!(
                "{} {}",
                fields.method.unwrap_or_default(),
                fields.status.unwrap_or(0)
            );
            let mut counts = self.0.counts.lock().unwrap_or_else(|e| e.into_inner());
            *counts.entry(key).or_default() += 1;
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    method: Option<String>,
    status: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.status = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "method" => self.method = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

/// Installs the (idle) counter as the global subscriber; call once, first.
pub fn install() {
    let _ = tracing::subscriber::set_global_default(Handle(counter()));
}

/// Starts counting from zero.
pub fn start() {
    let c = counter();
    c.counts.lock().unwrap_or_else(|e| e.into_inner()).clear();
    c.on.store(true, Ordering::SeqCst);
    tracing::callsite::rebuild_interest_cache();
}

/// Stops counting, disables every callsite again, and returns the counts.
pub fn stop() -> BTreeMap<String, u64> {
    let c = counter();
    c.on.store(false, Ordering::SeqCst);
    tracing::callsite::rebuild_interest_cache();
    std::mem::take(&mut *c.counts.lock().unwrap_or_else(|e| e.into_inner()))
}
