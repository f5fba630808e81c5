//! Time, only through an injected [`Clock`].
//!
//! Leases, timestamps and expiry are all compared against `Clock::now`, so tests can move time
//! with [`FakeClock`] instead of sleeping. Nothing else in the workspace may read the wall clock
//! (`clippy.toml` forbids `Utc::now` and `SystemTime::now` outside this file).

use chrono::{DateTime, TimeZone, Utc};
use std::fmt::Debug;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current instant, truncated to whole milliseconds (the resolution jobline stores).
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place allowed to read the wall clock
    fn now(&self) -> DateTime<Utc> {
        truncate_millis(Utc::now())
    }
}

/// Drops sub-millisecond precision, so a timestamp survives a round trip through the database.
pub fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    from_millis(t.timestamp_millis())
}

/// Milliseconds since the Unix epoch to a UTC timestamp (saturating on absurd values).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(any(test, feature = "test-util"))]
pub use fake::FakeClock;

#[cfg(any(test, feature = "test-util"))]
mod fake {
    use super::{from_millis, Clock};
    use chrono::{DateTime, Utc};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    /// A clock that moves only when told to. Clones share the same time.
    #[derive(Debug, Clone)]
    pub struct FakeClock {
        millis: Arc<AtomicI64>,
    }

    impl FakeClock {
        /// A clock standing at `start`.
        pub fn new(start: DateTime<Utc>) -> Self {
            Self { millis: Arc::new(AtomicI64::new(start.timestamp_millis())) }
        }

        /// A clock standing at 2026-01-01T00:00:00Z, a fixed and readable start for tests.
        pub fn at_default() -> Self {
            Self::new(from_millis(1_767_225_600_000))
        }

        /// Moves time forward.
        pub fn advance(&self, by: std::time::Duration) {
            let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            self.millis.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> DateTime<Utc> {
            from_millis(self.millis.load(Ordering::SeqCst))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fake_clock_moves_only_when_advanced_and_clones_share_time() {
        let clock = FakeClock::at_default();
        let other = clock.clone();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        other.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, chrono::Duration::milliseconds(1500));
    }

    #[test]
    fn system_clock_has_millisecond_resolution() {
        let now = SystemClock.now();
        assert_eq!(now.timestamp_subsec_nanos() % 1_000_000, 0);
    }
}
