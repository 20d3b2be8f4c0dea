//! `/metrics` for `cascade serve`: the Prometheus recorder behind the
//! engine's `metrics` calls, and the page that sets the queue and channel
//! gauges from the store as it is read.

use cascade_plugin_host::PluginHost;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};

/// Seconds: the plugin call histogram's buckets, from a local file write
/// to a slow provider.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once for the process (later calls get
/// the same handle).
pub fn recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            cascade_engine::metrics::describe();
            handle
        })
        .clone()
}

/// What `/metrics` serves: the gauges brought up to date, then everything
/// rendered.
pub fn page<S: cascade_store::AllStores>(
    handle: PrometheusHandle,
    store: Arc<S>,
    host: Arc<PluginHost>,
) -> cascade_server::Metrics {
    cascade_server::Metrics {
        render: Box::new(move || {
            let (handle, store, host) = (handle.clone(), store.clone(), host.clone());
            Box::pin(async move {
                let now = chrono::Utc::now().timestamp_millis();
                if let Err(e) = cascade_engine::metrics::observe(&*store, &host, now).await {
                    tracing::warn!("metrics: cannot read the queue from the store: {e}");
                }
                handle.render()
            })
        }),
    }
}
