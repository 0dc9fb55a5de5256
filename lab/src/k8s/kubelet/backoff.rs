//! client-go's per-item back-off (`util/flowcontrol/backoff.go`), as the
//! kubelet uses it for restarts (`kuberuntime_manager.go` `doBackOff`) and
//! image pulls (`images/image_manager.go`): the first retry is immediate,
//! then the delay starts at the base and doubles up to the maximum, and
//! resets after twice the maximum without a failure. Pure: time is passed
//! in.

use std::time::Duration;

use tokio::time::Instant;

/// client-go's per-item back-off.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    duration: Option<Duration>,
    last_update: Option<Instant>,
}

impl Backoff {
    /// The current delay, if `event` (the failure) is still within it.
    pub fn in_backoff(&self, event: Instant, now: Instant, max: Duration) -> Option<Duration> {
        let (d, last) = (self.duration?, self.last_update?);
        if event.saturating_duration_since(last) > max * 2 {
            return None;
        }
        (now.saturating_duration_since(event) < d).then_some(d)
    }

    /// Starts or doubles the delay after a failure at `event`.
    pub fn next(&mut self, event: Instant, base: Duration, max: Duration) {
        self.duration = Some(match (self.duration, self.last_update) {
            (Some(d), Some(last)) if event.saturating_duration_since(last) <= max * 2 => {
                (d * 2).min(max)
            }
            _ => base,
        });
        self.last_update = Some(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_first_then_doubles_to_the_max() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(40));
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(
            b.in_backoff(t0, t0, max),
            None,
            "first restart is immediate"
        );
        b.next(t0, base, max);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            b.in_backoff(t1, t1 + Duration::from_secs(9), max),
            Some(base)
        );
        assert_eq!(b.in_backoff(t1, t1 + Duration::from_secs(10), max), None);
        b.next(t1, base, max);
        let t2 = t1 + Duration::from_secs(11);
        assert_eq!(b.in_backoff(t2, t2, max), Some(Duration::from_secs(20)));
        b.next(t2, base, max);
        b.next(t2, base, max);
        assert_eq!(b.in_backoff(t2, t2, max), Some(max), "capped");
        let later = t2 + max * 3;
        assert_eq!(
            b.in_backoff(later, later, max),
            None,
            "expired after 2x max"
        );
        b.next(later, base, max);
        assert_eq!(b.in_backoff(later, later, max), Some(base), "reset");
    }
}
