//! Tracing and OpenTelemetry: the subscriber set-up of a process and the W3C
//! trace context carried in gRPC metadata, so one trace covers the
//! coordinator, every replica it called and the remote datacenters.
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are exported over OTLP/gRPC;
//! otherwise only the log layer runs: text (ANSI colour only when stderr is a
//! terminal) or one JSON object per line ([`LogFormat`]). This module must not
//! log requests.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Keeps the OTLP pipeline alive; flushes spans when dropped.
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stderr is a terminal, so
    /// journald and log files get no escape codes.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields, spans),
    /// for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format must be text or json, not '{other}'")),
        }
    }
}

/// The stderr log layer in `format`.
pub fn log_layer<S>(format: LogFormat) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use std::io::IsTerminal;
    log_layer_to(format, std::io::stderr, std::io::stderr().is_terminal())
}

fn log_layer_to<S, W>(
    format: LogFormat,
    writer: W,
    terminal: bool,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer;
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => layer.with_ansi(terminal).boxed(),
        LogFormat::Json => layer.json().with_ansi(false).boxed(),
    }
}

/// Installs the global subscriber: `RUST_LOG`-filtered text logs on stderr,
/// plus OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
pub fn init(service_name: &str, node_id: &str) -> TelemetryGuard {
    init_with_format(service_name, node_id, LogFormat::Text)
}

/// [`init`] with logs in `format`.
pub fn init_with_format(service_name: &str, node_id: &str, format: LogFormat) -> TelemetryGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let mut provider = None;
    let otel_layer = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => {
                let resource = opentelemetry_sdk::Resource::builder()
                    .with_service_name(service_name.to_string())
                    .with_attribute(opentelemetry::KeyValue::new(
                        "geokv.node",
                        node_id.to_string(),
                    ))
                    .build();
                let p = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build();
                let tracer = p.tracer("geokv");
                provider = Some(p);
                Some(tracing_opentelemetry::layer().with_tracer(tracer))
            }
            Err(e) => {
                eprintln!("OTLP exporter disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(log_layer(format))
        .with(otel_layer)
        .try_init();
    TelemetryGuard { provider }
}

struct MetaInjector<'a>(&'a mut MetadataMap);
impl Injector for MetaInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct MetaExtractor<'a>(&'a MetadataMap);
impl Extractor for MetaExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Writes the current span's trace context (`traceparent`) into outgoing metadata.
pub fn inject_current(meta: &mut MetadataMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut MetaInjector(meta));
}

/// The current span's W3C `traceparent`, or empty outside a sampled trace.
/// Stored with queued work (hinted streams) so its later, asynchronous
/// processing joins the request's trace.
pub fn current_traceparent() -> String {
    let mut meta = MetadataMap::new();
    inject_current(&mut meta);
    meta.get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Wraps `f` to run in the caller's span and subscriber on another thread
/// (`spawn_blocking`, where no span is current): a stream entry written
/// there then carries the request's trace context.
pub fn in_current_span<T>(f: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let span = tracing::Span::current();
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    move || tracing::dispatcher::with_default(&dispatch, || span.in_scope(f))
}

/// Makes `span` a child of a stored `traceparent` (see [`current_traceparent`]).
pub fn adopt_traceparent(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let mut meta = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(traceparent) {
        meta.insert("traceparent", v);
        adopt_remote_parent(span, &meta);
    }
}

/// Links `span` to a stored `traceparent` (a batch call serving several
/// requests: a child of one, linked to the others).
pub fn link_traceparent(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::trace::TraceContextExt;
    let mut meta = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(traceparent) {
        meta.insert("traceparent", v);
        let cx = TraceContextPropagator::new().extract(&MetaExtractor(&meta));
        let linked = cx.span().span_context().clone();
        if linked.is_valid() {
            span.add_link(linked);
        }
    }
}

/// Makes `span` a child of the trace context found in incoming metadata, if any.
pub fn adopt_remote_parent(span: &tracing::Span, meta: &MetadataMap) {
    let cx = TraceContextPropagator::new().extract(&MetaExtractor(meta));
    let _ = span.set_parent(cx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;
    use std::sync::{Arc, Mutex};

    /// Everything `format` writes for one event, as written to a file.
    fn logged(format: LogFormat, terminal: bool) -> String {
        #[derive(Clone)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf(Arc::new(Mutex::new(Vec::new())));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::registry().with(log_layer_to(
            format,
            move || writer.clone(),
            terminal,
        ));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("coordinator.write", keyspace = "default");
            span.in_scope(|| tracing::warn!(node = "dc1-n3", "membership: node is down"));
        });
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn logs_are_plain_off_a_terminal_and_json_on_request() {
        let plain = logged(LogFormat::Text, false);
        assert!(plain.contains("membership: node is down"), "{plain}");
        assert!(!plain.contains('\u{1b}'), "ANSI escape in {plain:?}");
        assert!(logged(LogFormat::Text, true).contains('\u{1b}'));

        let json = logged(LogFormat::Json, false);
        let line: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "membership: node is down");
        assert_eq!(line["fields"]["node"], "dc1-n3");
        assert_eq!(line["span"]["name"], "coordinator.write");
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
    }

    /// A span's trace context written into gRPC metadata on one side and
    /// adopted on the other yields a child in the same trace: what lets one
    /// trace follow a request from the coordinator to its replicas.
    #[test]
    fn trace_context_crosses_grpc_metadata() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = provider.tracer("test");
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::with_default(subscriber, || {
            let coordinator = tracing::info_span!("coordinator.write");
            let mut meta = MetadataMap::new();
            let sent_trace = coordinator.in_scope(|| {
                inject_current(&mut meta);
                tracing::Span::current()
                    .context()
                    .span()
                    .span_context()
                    .trace_id()
            });
            let header = meta
                .get("traceparent")
                .expect("traceparent header written")
                .to_str()
                .unwrap()
                .to_string();
            assert!(header.contains(&sent_trace.to_string()), "{header}");

            let replica = tracing::info_span!("internode");
            adopt_remote_parent(&replica, &meta);
            let got = replica.context().span().span_context().trace_id();
            assert_eq!(
                got, sent_trace,
                "the replica's span joins the coordinator's trace"
            );
        });
    }
}
