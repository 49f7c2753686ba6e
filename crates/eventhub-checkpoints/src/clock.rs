//! Where "now" comes from: the system clock, or a virtual clock that tests
//! and simulations move by hand.
//!
//! The [`LoadBalancer`](crate::LoadBalancer) decides whether an ownership has
//! expired by comparing the clock with the blob's last-modified time, and the
//! [`InMemoryBackend`](crate::InMemoryBackend) stamps last-modified times from
//! a clock; giving both the same [`ManualClock`] makes a simulation of many
//! consumers deterministic and instantaneous.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock ([`SystemTime::now`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A virtual clock that only moves when told to.
///
/// ```
/// # use std::time::{Duration, SystemTime};
/// # use eventhub_checkpoints::{Clock, ManualClock};
/// let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(10));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    /// Sets the clock to `to` (which may be in the past).
    pub fn set(&self, to: SystemTime) {
        *self.lock() = to;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        // A SystemTime cannot be left half-written.
        self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for ManualClock {
    /// A clock standing at 2024-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}
