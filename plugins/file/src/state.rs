//! What a running file channel keeps between sends: how many it has had,
//! which picks each one's injected failure (a made-up answer instead of a
//! write). The n-th send of an instance draws the n-th number of a seeded
//! sequence, so a seed replays the same pattern; the draw is pure.

use cascade_plugin_api::SendResult;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::InjectedFailures;

/// The sends of one instance, numbered in arrival order.
pub struct Sends {
    failures: InjectedFailures,
    count: AtomicU64,
}

impl Sends {
    pub fn new(failures: InjectedFailures) -> Sends {
        Sends {
            failures,
            count: AtomicU64::new(0),
        }
    }

    /// Numbers a new send and gives its made-up answer, or `None` when it
    /// should really be written.
    pub fn injected_failure(&self) -> Option<SendResult> {
        let send_number = self.count.fetch_add(1, Ordering::Relaxed);
        self.failures.for_send(send_number)
    }
}

impl InjectedFailures {
    /// The made-up answer for the `send_number`-th send (counting from 0), or
    /// `None` when that send should really be written.
    pub fn for_send(&self, send_number: u64) -> Option<SendResult> {
        // One draw splits [0, 1) into transient, permanent and delivered bands,
        // so each rate is exactly the share of its outcome.
        let draw = unit_interval(self.seed, send_number);
        if draw < self.transient_rate {
            Some(SendResult::Retry {
                reason: "injected transient failure".to_owned(),
                retry_after_ms: None,
            })
        } else if draw < self.transient_rate + self.permanent_rate {
            Some(SendResult::Failed {
                reason: "injected permanent failure".to_owned(),
                unreachable: false,
            })
        } else {
            None
        }
    }
}

/// The `index`-th number in [0, 1) of the sequence named by `seed`: SplitMix64
/// over the index, which needs no state shared between concurrent sends.
fn unit_interval(seed: u64, index: u64) -> f64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits fill an f64 mantissa exactly.
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(transient_rate: f64, permanent_rate: f64, seed: u64) -> InjectedFailures {
        InjectedFailures {
            transient_rate,
            permanent_rate,
            seed,
        }
    }

    fn outcomes(failures: InjectedFailures, sends: u64) -> Vec<Option<SendResult>> {
        (0..sends).map(|n| failures.for_send(n)).collect()
    }

    #[test]
    fn with_zero_rates_no_send_fails() {
        assert!(
            outcomes(failures(0.0, 0.0, 1), 1000)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn a_transient_rate_of_one_answers_every_send_with_retry() {
        for outcome in outcomes(failures(1.0, 0.0, 1), 100) {
            assert_eq!(
                outcome,
                Some(SendResult::Retry {
                    reason: "injected transient failure".to_owned(),
                    retry_after_ms: None
                })
            );
        }
    }

    #[test]
    fn a_permanent_rate_of_one_answers_every_send_with_failed() {
        for outcome in outcomes(failures(0.0, 1.0, 1), 100) {
            assert_eq!(
                outcome,
                Some(SendResult::Failed {
                    reason: "injected permanent failure".to_owned(),
                    unreachable: false,
                })
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_pattern() {
        let pattern = failures(0.3, 0.3, 42);
        assert_eq!(outcomes(pattern, 200), outcomes(pattern, 200));
    }

    #[test]
    fn different_seeds_give_different_patterns() {
        assert_ne!(
            outcomes(failures(0.3, 0.3, 1), 200),
            outcomes(failures(0.3, 0.3, 2), 200)
        );
    }

    #[test]
    fn the_share_of_each_outcome_is_close_to_its_rate() {
        let all = outcomes(failures(0.2, 0.1, 9), 10_000);
        let retries = all
            .iter()
            .filter(|o| matches!(o, Some(SendResult::Retry { .. })))
            .count();
        let failed = all
            .iter()
            .filter(|o| matches!(o, Some(SendResult::Failed { .. })))
            .count();
        assert!((1800..2200).contains(&retries), "{retries} retries");
        assert!((850..1150).contains(&failed), "{failed} failures");
    }

    #[test]
    fn draws_stay_within_zero_to_one() {
        for index in [0, 1, u64::MAX - 1, u64::MAX] {
            let draw = unit_interval(u64::MAX, index);
            assert!((0.0..1.0).contains(&draw), "{draw}");
        }
    }
}
