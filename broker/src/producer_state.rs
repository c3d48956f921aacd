//! Idempotent-producer sequence checks (pure logic, no I/O). Per producer id
//! and partition the last five batches are remembered, so a retried batch is
//! recognised and answered with its original offset instead of being written
//! twice or refused (a refusal makes clients resend and duplicate).

use kafka_protocol::error::ResponseError;
use skein_storage::{ProducerBatch, ProducerState, PRODUCER_BATCHES_KEPT};

/// The verdict on one incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New data in sequence: append it.
    Append,
    /// A retry of a batch already written at `base_offset`: answer success
    /// with that offset and write nothing.
    Duplicate { base_offset: i64 },
    /// Refused with this error.
    Reject(ResponseError),
}

/// Sequence numbers wrap from i32::MAX to 0.
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

/// Decides what to do with a batch from `epoch` carrying sequences
/// `first..=last`, given what is known of the producer.
pub fn check_sequence(known: Option<&ProducerState>, epoch: i16, first: i32, last: i32) -> SequenceCheck {
    let Some(state) = known else {
        // A producer we have never seen must start at sequence 0.
        return if first == 0 {
            SequenceCheck::Append
        } else {
            SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        };
    };
    if epoch < state.epoch {
        return SequenceCheck::Reject(ResponseError::InvalidProducerEpoch);
    }
    if epoch > state.epoch {
        // A bumped epoch restarts the sequence.
        return if first == 0 {
            SequenceCheck::Append
        } else {
            SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        };
    }
    if let Some(original) = state.batches.iter().find(|b| b.first_sequence == first && b.last_sequence == last) {
        return SequenceCheck::Duplicate { base_offset: original.base_offset };
    }
    match state.batches.back() {
        Some(newest) if first == next_sequence(newest.last_sequence) => SequenceCheck::Append,
        None if first == 0 => SequenceCheck::Append,
        _ => SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber),
    }
}

/// Records an appended batch, keeping the newest [`PRODUCER_BATCHES_KEPT`].
pub fn remember_batch(state: &mut ProducerState, epoch: i16, batch: ProducerBatch) {
    if epoch != state.epoch {
        state.epoch = epoch;
        state.batches.clear();
    }
    state.batches.push_back(batch);
    while state.batches.len() > PRODUCER_BATCHES_KEPT {
        state.batches.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(epoch: i16, batches: &[(i32, i32, i64)]) -> ProducerState {
        let mut state = ProducerState { epoch, ..Default::default() };
        for (first, last, base) in batches {
            remember_batch(
                &mut state,
                epoch,
                ProducerBatch { first_sequence: *first, last_sequence: *last, base_offset: *base, append_time_ms: 0 },
            );
        }
        state
    }

    #[test]
    fn new_producers_start_at_zero() {
        assert_eq!(check_sequence(None, 0, 0, 4), SequenceCheck::Append);
        assert_eq!(check_sequence(None, 0, 5, 9), SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber));
    }

    #[test]
    fn retries_within_the_window_return_the_original_offset() {
        let state = state_with(0, &[(0, 4, 100), (5, 9, 105), (10, 14, 110)]);
        assert_eq!(check_sequence(Some(&state), 0, 5, 9), SequenceCheck::Duplicate { base_offset: 105 });
        assert_eq!(check_sequence(Some(&state), 0, 15, 20), SequenceCheck::Append);
        assert_eq!(
            check_sequence(Some(&state), 0, 16, 20),
            SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let batches: Vec<_> = (0..7).map(|i| (i, i, i64::from(i))).collect();
        let state = state_with(0, &batches);
        assert_eq!(state.batches.len(), 5);
        assert_eq!(check_sequence(Some(&state), 0, 2, 2), SequenceCheck::Duplicate { base_offset: 2 });
        assert_eq!(
            check_sequence(Some(&state), 0, 1, 1),
            SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let state = state_with(3, &[(0, 9, 0)]);
        assert_eq!(check_sequence(Some(&state), 2, 10, 12), SequenceCheck::Reject(ResponseError::InvalidProducerEpoch));
        assert_eq!(check_sequence(Some(&state), 4, 0, 3), SequenceCheck::Append);
        assert_eq!(
            check_sequence(Some(&state), 4, 10, 12),
            SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let state = state_with(0, &[(i32::MAX - 1, i32::MAX, 0)]);
        assert_eq!(check_sequence(Some(&state), 0, 0, 3), SequenceCheck::Append);
    }
}
