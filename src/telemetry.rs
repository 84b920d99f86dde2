//! Logging with `tracing`: human-readable or JSON lines, filtered by `telemetry.level`
//! or `RUST_LOG`. Spans carry explicit fields only (request id, tenant, job id,
//! attempt); handlers use `skip_all`, so payloads and secrets never reach the logs.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    pub level: String,
}

/// Installs the global subscriber writing to stdout. Safe to call more than once:
/// later calls keep the first subscriber (tests start many apps in one process).
pub fn init(settings: &TelemetrySettings) {
    init_with_writer(settings, std::io::stdout);
}

/// As [`init`], writing to `writer` (tests capture the logs to scan them for secrets).
pub fn init_with_writer<W>(settings: &TelemetrySettings, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.with_target(false).try_init(),
    };
}
