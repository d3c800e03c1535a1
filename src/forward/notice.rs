//! Loud but bounded: a message that may repeat for every refused connection
//! is printed at most once per interval, with a count of what was held back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct RateLimit {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_shown: Option<Instant>,
    held_back: u64,
}

impl RateLimit {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new(State::default()),
        }
    }

    /// `Some(held_back)` when the message should be shown now, with how many
    /// were held back since the last one; `None` to stay quiet.
    pub(crate) fn check(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due = state
            .last_shown
            .is_none_or(|last| now.duration_since(last) >= self.every);
        if due {
            state.last_shown = Some(now);
            Some(std::mem::take(&mut state.held_back))
        } else {
            state.held_back += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_message_shows_then_repeats_are_counted() {
        let limit = RateLimit::new(Duration::from_secs(5));
        let start = Instant::now();
        assert_eq!(limit.check(start), Some(0));
        assert_eq!(limit.check(start + Duration::from_secs(1)), None);
        assert_eq!(limit.check(start + Duration::from_secs(2)), None);
        assert_eq!(limit.check(start + Duration::from_secs(5)), Some(2));
        assert_eq!(limit.check(start + Duration::from_secs(6)), None);
        assert_eq!(limit.check(start + Duration::from_secs(11)), Some(1));
    }
}
