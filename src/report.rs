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

/// Where each object of the input was read (`check` from files), by kind and `namespace/name`.
pub type Origins = std::collections::HashMap<(&'static str, String), crate::cluster::manifests::Origin>;

fn origin<'a>(origins: &'a Origins, r: &Report) -> Option<&'a crate::cluster::manifests::Origin> {
    origins.get(&(r.kind, r.object.clone()))
}

/// JUnit XML, as GitLab, Jenkins and most CI test-report views read it: one test case per object
/// (named by kind and object, with the file and line it came from), a `failure` listing what
/// would be denied, warnings and notes in `system-out`.
pub fn junit(reports: &[Report], origins: &Origins) -> String {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesText, Event};
    let failures = reports.iter().filter(|r| !r.allowed).count().to_string();
    let tests = reports.len().to_string();
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let lines = |r: &Report, verdicts: &[Outcome]| -> String {
        let shown = r.findings.iter().filter(|l| verdicts.contains(&l.verdict));
        shown.map(|l| format!("[{}] {}", l.rule, l.message)).collect::<Vec<_>>().join("\n")
    };
    let written: std::io::Result<()> = (|| {
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let attrs = [("name", "harness-guard check"), ("tests", tests.as_str()), ("failures", failures.as_str())];
        writer.create_element("testsuites").with_attributes(attrs).write_inner_content(|w| {
            let attrs = [("name", "harness-guard"), ("tests", tests.as_str()), ("failures", failures.as_str())];
            w.create_element("testsuite").with_attributes(attrs).write_inner_content(|w| {
                for r in reports {
                    let name = format!("{} {}", r.kind, r.object);
                    let origin = origin(origins, r).map(|o| (o.file.as_str(), o.line.to_string()));
                    let mut case =
                        w.create_element("testcase").with_attributes([("classname", r.kind), ("name", name.as_str())]);
                    if let Some((file, line)) = &origin {
                        case = case.with_attributes([("file", *file), ("line", line.as_str())]);
                    }
                    let denied = lines(r, &[Outcome::Deny]);
                    let other = lines(r, &[Outcome::Warn, Outcome::Note]);
                    if denied.is_empty() && other.is_empty() {
                        case.write_empty()?;
                        continue;
                    }
                    case.write_inner_content(|w| {
                        if !denied.is_empty() {
                            let first = r.findings.iter().find(|l| l.verdict == Outcome::Deny).map_or("", |l| l.rule);
                            w.create_element("failure")
                                .with_attributes([("type", first), ("message", "denied by harness-guard")])
                                .write_text_content(BytesText::new(&denied))?;
                        }
                        if !other.is_empty() {
                            w.create_element("system-out").write_text_content(BytesText::new(&other))?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    })();
    written.expect("writing XML to memory cannot fail");
    String::from_utf8(writer.into_inner()).expect("quick-xml writes UTF-8") + "\n"
}

/// SARIF 2.1.0 for code scanning: one result per finding, its rule, level (deny: error, warn:
/// warning, note: note), message, and the file and line of the object it is about.
pub fn sarif(reports: &[Report], origins: &Origins) -> String {
    use crate::core::policy::Rule;
    let rules: Vec<serde_json::Value> =
        Rule::ALL.iter().map(|r| serde_json::json!({"id": r.name(), "shortDescription": {"text": r.name()}})).collect();
    let mut results = Vec::new();
    for r in reports {
        for l in &r.findings {
            let level = match l.verdict {
                Outcome::Deny => "error",
                Outcome::Warn => "warning",
                Outcome::Note => "note",
            };
            let mut result = serde_json::json!({
                "ruleId": l.rule,
                "level": level,
                "message": {"text": l.message},
                "properties": {"object": format!("{} {}", r.kind, r.object), "cause": l.cause},
            });
            if let Some(o) = origin(origins, r) {
                result["locations"] = serde_json::json!([{"physicalLocation": {
                    "artifactLocation": {"uri": o.file},
                    "region": {"startLine": o.line},
                }}]);
            }
            results.push(result);
        }
    }
    let doc = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "harness-guard", "informationUri": "https://kagent.dev", "rules": rules}},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).expect("SARIF serializes") + "\n"
}
