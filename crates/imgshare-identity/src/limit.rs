//! Slowing down password guessing: failed authentications counted per user name.
//!
//! Rackspace documents only Repose's per-IP request rate (50/s, answered 413 `overLimit`), not a
//! per-user rule, so the rule is ours: after `max_failures` failed authentications for one user
//! name within `window`, every authentication of that name (right or wrong) is refused with
//! `overLimit` until the oldest counted failure leaves the window. A success clears the count.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

/// The limit on failed authentications per user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    /// Failures allowed within `window`.
    pub max_failures: usize,
    /// The sliding window.
    pub window: Duration,
    /// How many user names are tracked at most; the stalest is forgotten beyond that, so that
    /// guesses at random names cannot grow memory without bound.
    pub max_tracked: usize,
}

impl Default for FailureLimit {
    /// 5 failures per minute: room for a client's retry (pyrax retries a refused API key once as
    /// a password) and a few typing mistakes, and at most 7 200 guesses a day per user.
    fn default() -> Self {
        FailureLimit {
            max_failures: 5,
            window: Duration::seconds(60),
            max_tracked: 100_000,
        }
    }
}

/// Failure times per user name.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    limit: FailureLimit,
    failures: HashMap<String, VecDeque<DateTime<Utc>>>,
}

impl FailureLimiter {
    /// A limiter with this limit.
    pub fn new(limit: FailureLimit) -> Self {
        FailureLimiter {
            limit,
            failures: HashMap::new(),
        }
    }

    fn prune(&mut self, user: &str, now: DateTime<Utc>) {
        let window = self.limit.window;
        if let Some(times) = self.failures.get_mut(user) {
            while times.front().is_some_and(|first| *first + window <= now) {
                times.pop_front();
            }
            if times.is_empty() {
                self.failures.remove(user);
            }
        }
    }

    /// `Some(retry_at)` if `user` may not try now.
    pub fn blocked_until(&mut self, user: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.prune(user, now);
        let times = self.failures.get(user)?;
        if times.len() >= self.limit.max_failures {
            times.front().map(|first| *first + self.limit.window)
        } else {
            None
        }
    }

    /// Counts a failure of `user` at `now`.
    pub fn record_failure(&mut self, user: &str, now: DateTime<Utc>) {
        self.prune(user, now);
        if !self.failures.contains_key(user) && self.failures.len() >= self.limit.max_tracked {
            let window = self.limit.window;
            self.failures
                .retain(|_, times| times.back().is_some_and(|last| *last + window > now));
            if self.failures.len() >= self.limit.max_tracked {
                let stalest = self
                    .failures
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(name, _)| name.clone());
                if let Some(stalest) = stalest {
                    self.failures.remove(&stalest);
                }
            }
        }
        let times = self.failures.entry(user.to_owned()).or_default();
        times.push_back(now);
        // Only the last `max_failures` matter for the decision.
        while times.len() > self.limit.max_failures.max(1) {
            times.pop_front();
        }
    }

    /// Forgets the failures of `user` (after a success).
    pub fn clear(&mut self, user: &str) {
        self.failures.remove(user);
    }

    /// How many user names are tracked.
    pub fn tracked(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_sixth_attempt_within_a_minute_is_refused_until_the_window_passes() {
        let mut limiter = FailureLimiter::new(FailureLimit::default());
        for i in 0..5 {
            assert_eq!(limiter.blocked_until("alice", at(i)), None, "attempt {i}");
            limiter.record_failure("alice", at(i));
        }
        assert_eq!(limiter.blocked_until("alice", at(5)), Some(at(60)));
        assert_eq!(limiter.blocked_until("bob", at(5)), None, "per user");
        assert_eq!(limiter.blocked_until("alice", at(59)), Some(at(60)));
        assert_eq!(
            limiter.blocked_until("alice", at(60)),
            None,
            "the first left"
        );
        limiter.record_failure("alice", at(60));
        assert_eq!(limiter.blocked_until("alice", at(60)), Some(at(61)));
        assert_eq!(limiter.blocked_until("alice", at(61)), None);
    }

    #[test]
    fn a_success_clears_the_count() {
        let mut limiter = FailureLimiter::new(FailureLimit::default());
        for i in 0..4 {
            limiter.record_failure("alice", at(i));
        }
        limiter.clear("alice");
        for i in 0..4 {
            limiter.record_failure("alice", at(10 + i));
        }
        assert_eq!(limiter.blocked_until("alice", at(20)), None);
    }

    #[test]
    fn tracked_names_are_bounded() {
        let limit = FailureLimit {
            max_tracked: 3,
            ..FailureLimit::default()
        };
        let mut limiter = FailureLimiter::new(limit);
        for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            limiter.record_failure(name, at(i as i64));
        }
        assert_eq!(limiter.tracked(), 3);
        // Old entries leave once their window is over.
        limiter.record_failure("f", at(1000));
        assert_eq!(limiter.tracked(), 1);
    }
}
