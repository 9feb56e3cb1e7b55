"""Renders and lints charts/harness-guard with the real Helm engine (helm-python-sdk embeds
Helm v4's library), and prints one JSON document for tests/chart.rs to check:
lint findings, schema verdicts for good and mistyped values, and the rendered manifests of every
case; or, given values as JSON after the chart, only their rendered manifests. Nothing here asserts: the Rust test does, so a finding fails `cargo test`."""

import json
import sys

from helm_python import chart

CHART = sys.argv[1]
RELEASE, NAMESPACE = "harness-guard", "harness-guard"

CASES = {
    "self-signed": {},
    "cert-manager": {"certs": {"mode": "cert-manager"}},
    "provided": {"certs": {"mode": "provided", "provided": {"secretName": "my-tls", "caBundle": "LS0tLS1CRUdJTg=="}}},
    "namespaced": {
        "watch": {"namespaces": ["team-a", "team-b"], "labelSelector": "harness-guard.dev/watch=true"},
        "tests": {"namespace": "team-b"},
    },
    "references": {
        "webhooks": {"references": {"modelConfigs": True, "configMaps": True, "secrets": True}},
        "watch": {"labelSelector": "harness-guard.dev/watch=true, tier!=test, !legacy"},
    },
    "extras": {
        "serviceMonitor": {
            "enabled": True,
            "labels": {"release": "prom"},
            "scrapeTimeout": "10s",
            "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "go_.*"}],
        },
        "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
        "dashboard": {"enabled": True, "annotations": {"grafana_folder": "Platform"}},
        "networkPolicy": {"enabled": True},
        "replicaCount": 1,
        "webhooks": {"harnesses": {"failurePolicy": "Ignore"}, "podMutation": {"enabled": False}},
        "policy": {"rules": {"model-config-exists": "warn"}, "sandbox": {"namespaces": ["openshell", "sandboxes"]}},
    },
    # What a platform team sets when harness-guard is a subchart of their platform chart.
    "platform": {
        "global": {"imageRegistry": "mirror.example.com", "imagePullSecrets": ["regcred"], "storageClass": "fast"},
        "imagePullSecrets": [{"name": "regcred"}, {"name": "chart-only"}],
        "image": {"digest": "sha256:" + "ab" * 32},
        "priorityClassName": "system-cluster-critical",
        "podLabels": {"team": "platform"},
        "extraArgs": ["--handshake-timeout-seconds=4"],
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
        "probes": {"liveness": {"periodSeconds": 20, "failureThreshold": 5, "timeoutSeconds": 2}},
        "service": {"annotations": {"example.com/owner": "platform"}},
        "hostNetwork": True,
        "podDisruptionBudget": {"unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "openreports": {"enabled": False},
    },
}

# Values a user might mistype; the schema must refuse each.
MISTYPED = {
    "top-level typo": {"replicaCont": 3},
    "unknown mode": {"certs": {"mode": "selfsigned"}},
    "failure policy case": {"webhooks": {"harnesses": {"failurePolicy": "fail"}}},
    "unknown rule": {"policy": {"rules": {"model-config-exist": "warn"}}},
    "bad action": {"policy": {"rules": {"key-in-env": "block"}}},
    "nested typo": {"policy": {"sandbox": {"proxyURL": "http://x"}}},
    "timeout too long": {"webhooks": {"timeoutSeconds": 45}},
    "no sandbox namespace": {"policy": {"sandbox": {"namespaces": []}}},
    "digest without algorithm": {"image": {"digest": "abcdef"}},
    "scrape timeout unit": {"serviceMonitor": {"scrapeTimeout": "10"}},
    "probe path": {"probes": {"liveness": {"httpGet": {"path": "/"}}}},
}

# Values the schema cannot refuse (they compare two values); the templates must `fail` on each.
REFUSED = {
    "renew before the leaf ends": {"certs": {"selfSigned": {"validityDays": 30, "renewBeforeDays": 30}}},
    "CA shorter than a leaf's span": {"certs": {"selfSigned": {"caValidityDays": 395}}},
    "existing account without a name": {"serviceAccount": {"create": False}},
    "Fail on every Secret": {"webhooks": {"references": {"secrets": True, "failurePolicy": "Fail"}}},
    "set-based selector": {"webhooks": {"references": {"secrets": True}}, "watch": {"labelSelector": "env in (a,b)"}},
    "test in the release namespace": {"tests": {"namespace": "harness-guard"}},
    "test outside the watched namespaces": {"watch": {"namespaces": ["team-a"]}},
    "test without the harness webhook": {"webhooks": {"harnesses": {"enabled": False}}},
}


def render_error(c, values):
    try:
        c.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        return None
    except Exception as e:  # HelmRenderError: the template's `fail` or `required` message
        return str(e)


def schema_verdict(c, values):
    try:
        c.validate_schema(c.merge_values(values))
        return None
    except Exception as e:  # HelmValuesError: the message names the key
        return str(e)


def main():
    if len(sys.argv) > 2:
        # One render of the values given as JSON: its manifests only (tests/common/chart.rs).
        c = chart.Chart.load(CHART)
        json.dump(c.render(json.loads(sys.argv[2]), name=RELEASE, namespace=NAMESPACE, is_install=True), sys.stdout)
        return
    out = {"lint": {}, "cases": {}, "mistyped": {}, "refused": {}}
    for name, values in CASES.items():
        out["lint"][name] = chart.lint(CHART, values, strict=True, namespace=NAMESPACE)
    c = chart.Chart.load(CHART)
    for name, values in CASES.items():
        out["cases"][name] = {
            "schema_error": schema_verdict(c, values),
            "manifests": c.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True),
        }
    for name, values in MISTYPED.items():
        out["mistyped"][name] = schema_verdict(c, values)
    for name, values in REFUSED.items():
        out["refused"][name] = render_error(c, values)
    json.dump(out, sys.stdout)


main()
