//! The names of the engine's metrics, recorded through the `metrics` facade
//! (nothing is kept unless the binary installs a recorder: `cascade serve`
//! installs the Prometheus one behind `/metrics`). Labels carry channel
//! names and outcomes only, never a person, an address or message text.

/// Counter: sends answered, by `channel` and `outcome` (`sent`, `retry`
/// (failed for now, tried again later), `dead` (a dead letter),
/// `released` (not attempted: the rollout was paused or cancelled),
/// `deferred` (held back by the channel's sending quota)).
pub const SENDS: &str = "cascade_sends_total";
/// Histogram: seconds a plugin took to answer, by `channel` and `call`.
pub const PLUGIN_CALL_SECONDS: &str = "cascade_plugin_call_seconds";
/// Counter: acknowledgements, by `channel` (`web` for the link page) and
/// `outcome` (`recorded`, or `repeat` for a version already acknowledged).
pub const ACKNOWLEDGEMENTS: &str = "cascade_acknowledgements_total";
/// Counter: champions' cascade confirmations recorded, by `channel`.
pub const CONFIRMATIONS: &str = "cascade_confirmations_total";
/// Counter: inbound chat events handled, by `channel` and `kind`
/// (`command`, `text`, `action`, `form`, `receipt`).
pub const INBOUND_EVENTS: &str = "cascade_inbound_events_total";
/// Gauge: rows of active rollouts due now and not claimed, by `channel`.
pub const QUEUE_DUE: &str = "cascade_queue_due";
/// Gauge: rows claimed and not yet answered, by `channel`.
pub const QUEUE_LEASED: &str = "cascade_queue_leased";
/// Gauge: rows waiting to be retried later, by `channel`.
pub const QUEUE_RETRYING: &str = "cascade_queue_retrying";
/// Gauge: seconds since the oldest row due now fell due, by `channel`
/// (0 when none is due).
pub const OLDEST_DUE_SECONDS: &str = "cascade_queue_oldest_due_seconds";
/// Gauge: 1 while a channel is up, 0 while it is down, by `channel`.
pub const CHANNEL_UP: &str = "cascade_channel_up";

/// Describes every metric (its help text on `/metrics`).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        SENDS,
        "Sends answered, by channel and outcome (sent, retry, dead, released, deferred)."
    );
    describe_histogram!(
        PLUGIN_CALL_SECONDS,
        metrics::Unit::Seconds,
        "Time a channel plugin took to answer a call."
    );
    describe_counter!(
        ACKNOWLEDGEMENTS,
        "Acknowledgements, by channel and outcome (recorded, repeat)."
    );
    describe_counter!(
        CONFIRMATIONS,
        "Champions' cascade confirmations recorded, by channel."
    );
    describe_counter!(
        INBOUND_EVENTS,
        "Inbound chat events handled, by channel and kind."
    );
    describe_gauge!(
        QUEUE_DUE,
        "Rows of active rollouts due now and not claimed."
    );
    describe_gauge!(
        QUEUE_LEASED,
        "Rows claimed by a dispatcher and not yet answered."
    );
    describe_gauge!(QUEUE_RETRYING, "Rows waiting to be retried later.");
    describe_gauge!(
        OLDEST_DUE_SECONDS,
        metrics::Unit::Seconds,
        "Seconds since the oldest row due now fell due."
    );
    describe_gauge!(CHANNEL_UP, "1 while a channel is up, 0 while it is down.");
}

/// Sets the queue and channel gauges from the store and the plugin host,
/// as of `now` (Unix ms): called when `/metrics` is read, so the figures
/// are current without a timer. Every configured channel gets a value
/// (0 when it has nothing queued), so a drained queue does not linger.
pub async fn observe<S: cascade_store::Outbox>(
    store: &S,
    host: &cascade_plugin_host::PluginHost,
    now: i64,
) -> Result<(), cascade_store::StoreError> {
    use metrics::gauge;
    let queues = store.queues(now).await?;
    let states = host.channel_states();
    let mut channels: Vec<String> = states.keys().cloned().collect();
    for queue in &queues {
        if !channels.contains(&queue.channel) {
            channels.push(queue.channel.clone());
        }
    }
    for channel in channels {
        let queue = queues.iter().find(|q| q.channel == channel);
        let count = |f: fn(&cascade_store::ChannelQueue) -> i64| queue.map_or(0, f) as f64;
        gauge!(QUEUE_DUE, "channel" => channel.clone()).set(count(|q| q.due_now));
        gauge!(QUEUE_LEASED, "channel" => channel.clone()).set(count(|q| q.leased));
        gauge!(QUEUE_RETRYING, "channel" => channel.clone()).set(count(|q| q.retrying));
        let oldest = queue
            .and_then(|q| q.oldest_due_at)
            .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
        gauge!(OLDEST_DUE_SECONDS, "channel" => channel.clone()).set(oldest);
        if let Some(state) = states.get(&channel) {
            let up = matches!(state, cascade_plugin_host::ChannelState::Up);
            gauge!(CHANNEL_UP, "channel" => channel).set(if up { 1.0 } else { 0.0 });
        }
    }
    Ok(())
}
