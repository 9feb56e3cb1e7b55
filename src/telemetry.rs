//! Logs (tracing: JSON off a terminal, readable on one) and Prometheus metrics.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

/// Log lines the writer may hold while standard output is slow (`HARNESS_GUARD_LOG_BUFFER_LINES`
/// sets it); past it, lines are dropped and counted (`harness_guard_log_lines_dropped`), never
/// waited for on the request path.
const LOG_BUFFER_LINES: usize = 8 * 1024;
/// The log thread writes what has gathered this often...
const LOG_FLUSH_EVERY: Duration = Duration::from_millis(50);
/// ...or as soon as this much has.
const LOG_FLUSH_AT: usize = 64 * 1024;

/// The log buffer of the process, once installed.
static LOGS: OnceLock<Arc<LogBuffer>> = OnceLock::new();

/// How many log lines were dropped because standard output could not keep up.
pub fn log_lines_dropped() -> usize {
    LOGS.get().map_or(0, |b| b.dropped.load(Ordering::Relaxed))
}

/// Where formatted log lines gather until the log thread writes them: a request appends its line
/// under a short lock and goes on. One write (and one wake of the log thread) per batch, never
/// one per line: a thread woken for every admission's line cost more than formatting it.
struct LogBuffer {
    pending: Mutex<Pending>,
    wake: Condvar,
    limit: usize,
    dropped: AtomicUsize,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
    closing: bool,
}

/// A handle the fmt layer writes each formatted line through.
#[derive(Clone)]
struct BatchWriter(Arc<LogBuffer>);

impl std::io::Write for BatchWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.0.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.lines >= self.0.limit {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(line.len());
        }
        pending.bytes.extend_from_slice(line);
        pending.lines += 1;
        if pending.bytes.len() >= LOG_FLUSH_AT {
            self.0.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The log thread: every [`LOG_FLUSH_EVERY`] (sooner when [`LOG_FLUSH_AT`] has gathered) it takes
/// what is pending and writes it in one go, outside the lock; a stuck output stalls only it.
fn write_logs(buffer: Arc<LogBuffer>, mut out: Box<dyn std::io::Write + Send>) {
    let mut batch = Vec::new();
    loop {
        let closing = {
            let pending = buffer.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (mut pending, _) = buffer
                .wake
                .wait_timeout_while(pending, LOG_FLUSH_EVERY, |p| p.bytes.len() < LOG_FLUSH_AT && !p.closing)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::swap(&mut batch, &mut pending.bytes);
            pending.lines = 0;
            pending.closing
        };
        if !batch.is_empty() {
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
        }
        if closing {
            return;
        }
    }
}

/// Keeps the log thread; [`finish_logs`] flushes and stops it.
pub struct LogGuard {
    buffer: Arc<LogBuffer>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.buffer.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).closing = true;
        self.buffer.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Standard output as a file of its own: the log thread then never holds the process's stdout
/// lock while a write blocks, so nothing else waits on a stuck log reader.
fn log_output() -> Box<dyn std::io::Write + Send> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

/// Flushes what the log writer holds, waiting at most two seconds: a log reader that stopped
/// reading must not keep the process from exiting.
pub fn finish_logs(guard: Option<LogGuard>) {
    let Some(guard) = guard else { return };
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        let _ = done.send(());
    });
    let _ = waited.recv_timeout(Duration::from_secs(2));
}

/// Installs the global tracing subscriber. `RUST_LOG` (or `HARNESS_GUARD_LOG`) sets the filter.
/// Lines are formatted on the calling thread and written in batches by a dedicated one, so no
/// request waits on standard output; keep the returned guard alive until exit, dropping it
/// flushes the rest.
pub fn init_tracing(json: Option<bool>) -> Option<LogGuard> {
    let filter = std::env::var("HARNESS_GUARD_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = json.unwrap_or(!std::io::stdout().is_terminal());
    let limit = std::env::var("HARNESS_GUARD_LOG_BUFFER_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(LOG_BUFFER_LINES);
    let buffer =
        Arc::new(LogBuffer { pending: Mutex::default(), wake: Condvar::new(), limit, dropped: AtomicUsize::new(0) });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(BatchWriter(buffer.clone()));
    // Another subscriber may already be installed (tests); then keep it.
    let installed = if json {
        let inner = tracing_subscriber::fmt::format().json().flatten_event(true);
        // Span fields are recorded as JSON, as `json()` would; the events are written by `JsonLines`.
        builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(JsonLines { inner })
            .try_init()
    } else {
        builder.try_init()
    };
    installed.ok()?;
    let _ = LOGS.set(buffer.clone());
    let out = log_output();
    let writer = buffer.clone();
    let thread =
        std::thread::Builder::new().name("harness-guard-log".into()).spawn(move || write_logs(writer, out)).ok()?;
    Some(LogGuard { buffer, thread: Some(thread) })
}

/// The JSON log format: tracing-subscriber's own (`json().flatten_event(true)`), except that an
/// event outside any span (every admission's record) is written here directly, with the same
/// keys in the same order, instead of through its generic serializer, which passes each fragment
/// through a UTF-8 check and a formatter call: that record is written once per request.
struct JsonLines {
    inner: tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::time::FormatTime;
        // Inside a span the record also lists the spans, and a `log` record takes its target from
        // its fields: tracing-subscriber writes those.
        let meta = event.metadata();
        if event.parent().is_some() || ctx.lookup_current().is_some() || meta.fields().field("log.target").is_some() {
            return self.inner.format_event(ctx, writer, event);
        }
        writer.write_str("{\"timestamp\":\"")?;
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = FieldWriter { out: &mut writer, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        json_string(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`: strings escaped, numbers and booleans bare, anything
/// else by its `Debug` form as a string (as tracing-serde does).
struct FieldWriter<'a, W: std::fmt::Write> {
    out: &'a mut W,
    result: std::fmt::Result,
}

impl<W: std::fmt::Write> FieldWriter<'_, W> {
    fn entry(&mut self, field: &tracing::field::Field, value: impl FnOnce(&mut W) -> std::fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.out.write_char(',')?;
                json_string(self.out, field.name())?;
                self.out.write_char(':')?;
                value(self.out)
            })();
        }
    }
}

impl<W: std::fmt::Write> tracing::field::Visit for FieldWriter<'_, W> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.entry(field, |out| json_string(out, value));
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.entry(field, |out| out.write_str(if value { "true" } else { "false" }));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.entry(field, |out| write!(out, "{value}"));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.entry(field, |out| write!(out, "{value}"));
    }
    fn record_u128(&mut self, field: &tracing::field::Field, value: u128) {
        self.entry(field, |out| write!(out, "{value}"));
    }
    fn record_i128(&mut self, field: &tracing::field::Field, value: i128) {
        self.entry(field, |out| write!(out, "{value}"));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null.
        self.entry(field, |out| if value.is_finite() { write!(out, "{value:?}") } else { out.write_str("null") });
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        // Escaped as it is formatted: the record's `message` comes this way, on every admission.
        self.entry(field, |out| {
            out.write_char('"')?;
            write!(Escaped(&mut *out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped (RFC 8259 §7).
fn json_string(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    out.write_char('"')?;
    Escaped(&mut *out).write_str(text)?;
    out.write_char('"')
}

/// A writer that passes text on with JSON's string escapes applied (RFC 8259 §7): quotes,
/// backslashes and control characters.
struct Escaped<'a, W: std::fmt::Write>(&'a mut W);

impl<W: std::fmt::Write> std::fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let out = &mut *self.0;
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            out.write_str(&text[plain..i])?;
            if escape.is_empty() {
                write!(out, "\\u{byte:04x}")?;
            } else {
                out.write_str(escape)?;
            }
            plain = i + 1;
        }
        out.write_str(&text[plain..])
    }
}

/// Replaces the inside of every quoted run (`"…"` or `` `…` ``) with `…`: error texts from serde
/// quote the offending value or variant, and that value may be a secret.
pub fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    for c in text.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None if c == '"' || c == '`' => {
                out.push(c);
                open = Some(c);
            }
            None => out.push(c),
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    /// The admission record's writer gives what tracing-subscriber's JSON format gives for the
    /// same events: the same keys in the same order and the same values, escapes included.
    #[test]
    fn json_lines_match_tracing_subscribers_json() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let emit = || {
            tracing::info!(
                webhook = "validate",
                uid = "7e57-\"quoted\"-\\-\n-\t-\r-\u{1}-\u{8}-\u{c}-\u{1f}-\u{7f}-é-✓",
                dry_run = false,
                duration_us = 17u64,
                delta = -3i64,
                share = 0.25f64,
                whole = 2.0f64,
                rules = "model-secret-resolves,explicit-upstream",
                objects = ?[("AgentHarness", 3)],
                "admission {}", "done"
            );
            tracing::warn!(error = %std::io::Error::other("no \"route\""), "bare");
        };
        let run = |fast: bool| {
            let sink = Sink::default();
            let writer = {
                let sink = sink.clone();
                move || sink.clone()
            };
            let builder = tracing_subscriber::fmt().with_writer(writer).json().flatten_event(true);
            if fast {
                let inner = tracing_subscriber::fmt::format().json().flatten_event(true);
                tracing::subscriber::with_default(builder.event_format(super::JsonLines { inner }).finish(), emit);
            } else {
                tracing::subscriber::with_default(builder.finish(), emit);
            }
            let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
            // Timestamps differ between the runs; everything else must not.
            text.lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                    assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 27), "{l}");
                    let cut = l.find("\",\"level\"").unwrap();
                    l[cut..].to_string()
                })
                .collect::<Vec<_>>()
        };
        let (fast, reference) = (run(true), run(false));
        assert_eq!(fast.len(), 2);
        assert_eq!(fast, reference);
    }

    #[test]
    fn request_counts_through_resolved_handles_and_for_other_kinds() {
        let metrics = super::Metrics::new();
        for _ in 0..3 {
            metrics.request("validate", "AgentHarness", "CREATE", "denied", 0.001);
        }
        metrics.request("mutate", "Pod", "CREATE", "patched", 0.001);
        metrics.request("validate", "Deployment", "CREATE", "unhandled", 0.001);
        let text = metrics.encode();
        for line in [
            r#"harness_guard_admission_requests_total{webhook="validate",kind="AgentHarness",operation="CREATE",verdict="denied"} 3"#,
            r#"harness_guard_admission_requests_total{webhook="mutate",kind="Pod",operation="CREATE",verdict="patched"} 1"#,
            r#"harness_guard_admission_requests_total{webhook="validate",kind="Deployment",operation="CREATE",verdict="unhandled"} 1"#,
            r#"harness_guard_admission_duration_seconds_count{webhook="validate"} 4"#,
            r#"harness_guard_admission_duration_seconds_count{webhook="mutate"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn quoted_runs_are_redacted() {
        let text = r#"invalid type: string "sk-secret", expected `a` at line 1 and `open"#;
        assert_eq!(super::redact_quoted(text), "invalid type: string \"…\", expected `…` at line 1 and `…");
    }
}

// Label values are borrowed where they can be: these are built on every request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    webhook: &'static str,
    kind: Cow<'static, str>,
    operation: &'static str,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    webhook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: &'static str,
    cause: &'static str,
    action: &'static str,
}

/// Every metric harness-guard exports, registered once.
/// Label values whose request counters are resolved once (see [`Metrics::request`]).
const WEBHOOKS: [&str; 2] = ["validate", "mutate"];
const SERVED_KINDS: [&str; 5] = ["AgentHarness", "Pod", "Secret", "ConfigMap", "ModelConfig"];
const OPERATIONS: [&str; 4] = ["CREATE", "UPDATE", "DELETE", "CONNECT"];
const VERDICTS: [&str; 5] = ["allowed", "warned", "patched", "denied", "unhandled"];
const REQUEST_HANDLES: usize = WEBHOOKS.len() * SERVED_KINDS.len() * OPERATIONS.len() * VERDICTS.len();

pub struct Metrics {
    registry: Registry,
    request_handles: [OnceLock<Counter>; REQUEST_HANDLES],
    latency_handles: [OnceLock<Histogram>; WEBHOOKS.len()],
    requests: Family<RequestLabels, Counter>,
    latency: Family<WebhookLabels, Histogram>,
    findings: Family<RuleLabels, Counter>,
    unhandled: Family<KindLabels, Counter>,
    objects: Family<KindLabels, Gauge>,
    watch_errors: Family<KindLabels, Counter>,
    invalid_objects: Family<KindLabels, Counter>,
    bad_requests: Counter,
    cert_expiry: Gauge,
    violations: Family<RuleOnly, Gauge>,
    audit_passes: Counter,
    cert_checks: Family<ResultLabels, Counter>,
    report_writes: Family<ReportWriteLabels, Counter>,
    log_dropped: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportWriteLabels {
    operation: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleOnly {
    rule: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `harness_guard` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("harness_guard");
        let requests = Family::default();
        registry.register(
            "admission_requests",
            "Admission requests by webhook, kind, operation and verdict",
            requests.clone(),
        );
        let latency = Family::<WebhookLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        registry.register("admission_duration_seconds", "Time from body read to answer", latency.clone());
        let findings = Family::default();
        registry.register("findings", "Rule findings by rule, cause and the action the policy took", findings.clone());
        let unhandled = Family::default();
        registry.register(
            "unhandled_kinds",
            "Requests for a kind the route does not handle (check the webhook rules)",
            unhandled.clone(),
        );
        let objects = Family::default();
        registry.register("view_objects", "Objects held in the cluster view by kind", objects.clone());
        let watch_errors = Family::default();
        registry.register("watch_errors", "Watch errors by kind (each is retried with backoff)", watch_errors.clone());
        let invalid_objects = Family::default();
        registry.register(
            "invalid_objects",
            "Watched objects that did not deserialize, by kind",
            invalid_objects.clone(),
        );
        let bad_requests = Counter::default();
        registry.register(
            "bad_requests",
            "Requests refused before review (malformed, oversized, wrong type)",
            bad_requests.clone(),
        );
        let log_dropped = Gauge::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped since start because the log output could not keep up",
            log_dropped.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, Unix time",
            cert_expiry.clone(),
        );
        let violations = Family::default();
        registry.register(
            "violations",
            "Existing AgentHarnesses whose chain fails a rule now (continuous audit)",
            violations.clone(),
        );
        let cert_checks = Family::default();
        registry.register(
            "certificate_checks",
            "Checks of the serving certificate source by result: loaded, unchanged, refused, waiting, failed",
            cert_checks.clone(),
        );
        let audit_passes = Counter::default();
        registry.register("audit_passes", "Continuous audit passes completed", audit_passes.clone());
        let report_writes = Family::default();
        registry.register(
            "report_writes",
            "OpenReports Report writes by operation (apply, delete) and result (ok, error)",
            report_writes.clone(),
        );
        Self {
            registry,
            request_handles: std::array::from_fn(|_| OnceLock::new()),
            latency_handles: std::array::from_fn(|_| OnceLock::new()),
            requests,
            latency,
            findings,
            unhandled,
            objects,
            watch_errors,
            invalid_objects,
            bad_requests,
            cert_expiry,
            violations,
            audit_passes,
            cert_checks,
            report_writes,
            log_dropped,
        }
    }

    /// Counts one answered admission request.
    pub fn request(
        &self,
        webhook: &'static str,
        kind: &str,
        operation: &'static str,
        verdict: &'static str,
        seconds: f64,
    ) {
        // The label sets of the kinds harness-guard serves are resolved once: no hashing or lock
        // of the family's map per request.
        let position = |names: &[&str], name: &str| names.iter().position(|n| *n == name);
        let w = position(&WEBHOOKS, webhook);
        let slot = (|| {
            let k = position(&SERVED_KINDS, kind)?;
            let o = position(&OPERATIONS, operation)?;
            let v = position(&VERDICTS, verdict)?;
            Some((k, (((w? * SERVED_KINDS.len() + k) * OPERATIONS.len() + o) * VERDICTS.len()) + v))
        })();
        match slot {
            Some((k, slot)) => {
                let labels = RequestLabels { webhook, kind: Cow::Borrowed(SERVED_KINDS[k]), operation, verdict };
                self.request_handles[slot].get_or_init(|| self.requests.get_or_create(&labels).clone()).inc();
            }
            None => {
                let labels = RequestLabels { webhook, kind: Cow::Owned(kind.to_string()), operation, verdict };
                self.requests.get_or_create(&labels).inc();
            }
        }
        let latency = || self.latency.get_or_create(&WebhookLabels { webhook }).clone();
        match w {
            Some(w) => self.latency_handles[w].get_or_init(latency).observe(seconds),
            None => latency().observe(seconds),
        }
    }

    pub fn finding(&self, rule: &'static str, cause: &'static str, action: &'static str) {
        let labels = RuleLabels { rule, cause, action };
        self.findings.get_or_create(&labels).inc();
    }

    /// Counts a request for a kind the route does not handle.
    pub fn unhandled(&self, kind: &str) {
        self.unhandled.get_or_create(&KindLabels { kind: kind.into() }).inc();
    }

    /// Counts one check of the certificate source with its `result`.
    pub fn cert_check(&self, result: &'static str) {
        self.cert_checks.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts a completed continuous audit pass.
    pub fn audit_pass(&self) {
        self.audit_passes.inc();
    }

    /// Counts one write of an OpenReports Report: `operation` apply or delete, `ok` or not.
    pub fn report_write(&self, operation: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.report_writes.get_or_create(&ReportWriteLabels { operation, result }).inc();
    }

    /// Counts a refused request.
    pub fn bad_request(&self) {
        self.bad_requests.inc();
    }

    /// Counts a watch error.
    pub fn watch_error(&self, kind: &str) {
        self.watch_errors.get_or_create(&KindLabels { kind: kind.into() }).inc();
    }

    /// Counts an object that did not deserialize.
    pub fn invalid_object(&self, kind: &str) {
        self.invalid_objects.get_or_create(&KindLabels { kind: kind.into() }).inc();
    }

    /// Records how many objects of `kind` the view holds.
    pub fn set_objects(&self, kind: &str, count: usize) {
        self.objects.get_or_create(&KindLabels { kind: kind.into() }).set(count as i64);
    }

    /// Records the audit's violation counts; every rule is exported, zero when nothing fails it.
    pub fn set_violations(&self, counts: &std::collections::BTreeMap<&'static str, usize>) {
        for rule in crate::core::policy::Rule::ALL {
            let n = counts.get(rule.name()).copied().unwrap_or(0);
            self.violations.get_or_create(&RuleOnly { rule: rule.name().to_string() }).set(n as i64);
        }
    }

    /// Records how many log lines the writer dropped since start.
    pub fn set_log_lines_dropped(&self, lines: usize) {
        self.log_dropped.set(i64::try_from(lines).unwrap_or(i64::MAX));
    }

    /// Records the serving certificate's notAfter.
    pub fn set_cert_expiry(&self, unix_seconds: i64) {
        self.cert_expiry.set(unix_seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
