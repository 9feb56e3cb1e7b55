//! Output of `check` and `audit`: a readable table or JSON, and the exit code.

use serde::Serialize;

use crate::core::audit::{Outcome, Report};

/// Exit code when nothing is denied.
pub const EXIT_OK: i32 = 0;
/// Exit code when something is denied.
pub const EXIT_DENIED: i32 = 1;
/// Exit code for unusable input.
pub const EXIT_UNUSABLE: i32 = 2;

#[derive(Serialize)]
struct Summary {
    objects: usize,
    denied: usize,
    warnings: usize,
    notes: usize,
}

#[derive(Serialize)]
struct Document<'a> {
    results: &'a [Report],
    summary: Summary,
}

fn summary(reports: &[Report]) -> Summary {
    let count = |o: Outcome| reports.iter().flat_map(|r| &r.findings).filter(|l| l.verdict == o).count();
    Summary {
        objects: reports.len(),
        denied: reports.iter().filter(|r| !r.allowed).count(),
        warnings: count(Outcome::Warn),
        notes: count(Outcome::Note),
    }
}

/// The exit code for these reports.
pub fn exit_code(reports: &[Report]) -> i32 {
    if reports.iter().all(|r| r.allowed) { EXIT_OK } else { EXIT_DENIED }
}

/// Pretty JSON.
pub fn json(reports: &[Report]) -> String {
    serde_json::to_string_pretty(&Document { results: reports, summary: summary(reports) }).expect("reports serialize")
}

/// A table: OBJECT, RULE, VERDICT, MESSAGE; one row per finding, one `ok` row per clean object.
pub fn table(reports: &[Report]) -> String {
    let mut rows = vec![["OBJECT".to_string(), "RULE".into(), "VERDICT".into(), "MESSAGE".into()]];
    for r in reports {
        let object = format!("{} {}", r.kind, r.object);
        if r.findings.is_empty() {
            rows.push([object.clone(), "-".into(), "ok".into(), String::new()]);
        }
        for l in &r.findings {
            let verdict = match l.verdict {
                Outcome::Deny => "denied",
                Outcome::Warn => "warning",
                Outcome::Note => "note",
            };
            rows.push([object.clone(), l.rule.to_string(), verdict.into(), l.message.clone()]);
        }
    }
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    let mut out = String::new();
    for row in &rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", row[i], w = w));
        }
        out.push_str(&row[3]);
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    }
    for r in reports.iter().filter(|r| !r.patch.is_empty()) {
        out.push_str(&format!(
            "\n{} {}: /mutate would patch (RFC 6902; -o yaml prints the patched pod):\n",
            r.kind, r.object
        ));
        for op in &r.patch {
            let op = serde_json::to_value(op).expect("a patch operation serializes");
            let value = op.get("value").map(|v| format!(" {v}")).unwrap_or_default();
            out.push_str(&format!(
                "  {} {}{value}\n",
                op["op"].as_str().unwrap_or(""),
                op["path"].as_str().unwrap_or("")
            ));
        }
    }
    let s = summary(reports);
    let n = |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    out.push_str(&format!(
        "\n{}: {} denied, {}, {}\n",
        n(s.objects, "object"),
        s.denied,
        n(s.warnings, "warning"),
        n(s.notes, "note")
    ));
    out
}

/// The input's pods as the mutating webhook would admit them: each sandbox pod with its patch
/// applied, other pods as they are; multi-document YAML.
pub fn patched_pods(
    pods: &[(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, k8s_openapi::api::core::v1::PodSpec)],
    reports: &[Report],
) -> Result<String, String> {
    let mut docs = Vec::new();
    for (meta, spec) in pods {
        let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
        let key = format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""));
        if let Some(report) = reports.iter().find(|r| r.kind == "Pod" && r.object == key) {
            json_patch::patch(&mut pod, &report.patch)
                .map_err(|e| format!("cannot apply the patch to Pod {key}: {e}"))?;
        }
        docs.push(pod);
    }
    serde_saphyr::to_string_multiple(&docs).map_err(|e| e.to_string())
}
