//! The log on stderr: `tracing` events filtered by `RUST_LOG`, as text or JSON lines.

use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, the request span's fields under `span`.
    Json,
}

/// Installs the process's subscriber. `default` is the filter when `RUST_LOG` is unset; a
/// `RUST_LOG` that does not parse is reported and the default used.
pub(crate) fn init(format: LogFormat, default: &str) {
    let (filter, bad_filter) = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => match EnvFilter::try_new(&text) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new(default), Some((text, error))),
        },
        _ => (EnvFilter::new(default), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Another subscriber already installed (only possible in tests) keeps its place.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(crate::stderr_is_terminal()).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    if let Some((text, error)) = bad_filter {
        tracing::warn!(rust_log = text.as_str(), error = %error, "RUST_LOG ignored: it does not parse; using {default}");
    }
}
