{{/* Chart name. */}}
{{- define "harness-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of every object. */}}
{{- define "harness-guard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "harness-guard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "harness-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: harness-guard
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the pods. */}}
{{- define "harness-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "harness-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "harness-guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "harness-guard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required with serviceAccount.create=false: name the existing ServiceAccount the pods run as (the chart binds its RBAC to it; the namespace's default account must not get it)" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The TLS Secret the server reads (or, self-signed, writes). */}}
{{- define "harness-guard.tlsSecretName" -}}
{{- if eq .Values.certs.mode "provided" }}
{{- required "certs.provided.secretName is required with certs.mode=provided" .Values.certs.provided.secretName }}
{{- else }}
{{- printf "%s-tls" (include "harness-guard.fullname" .) }}
{{- end }}
{{- end }}

{{/*
caBundle for a webhook configuration. provided: from values. self-signed: never rendered (the
Lease holder writes it at run time; a render that left it empty would blank it under
`kubectl apply` or a GitOps tool, and one filled by `lookup` is empty there anyway).
cert-manager: empty, cert-manager's CA injector fills it.
*/}}
{{- define "harness-guard.caBundle" -}}
{{- $root := index . 0 }}
{{- if eq $root.Values.certs.mode "provided" }}
{{- required "certs.provided.caBundle is required with certs.mode=provided" $root.Values.certs.provided.caBundle }}
{{- end }}
{{- end }}

{{/*
Metadata of the webhook configurations: cert-manager's cainjector writes the caBundle, from the
chart's CA Certificate (the trust anchor, which outlives serving renewals), or from the serving
Certificate when certs.certManager.issuerRef names another issuer.
*/}}
{{- define "harness-guard.webhookMetadata" -}}
{{- $fullname := include "harness-guard.fullname" . }}
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "harness-guard.labels" . | nindent 4 }}
  {{- if eq .Values.certs.mode "cert-manager" }}
  annotations:
    cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (ternary $fullname (printf "%s-ca" $fullname) (not (empty .Values.certs.certManager.issuerRef))) }}
  {{- end }}
{{- end }}

{{/* clientConfig pointing at the Service. Arguments: root, path, webhook kind. */}}
{{- define "harness-guard.clientConfig" -}}
{{- $root := index . 0 -}}
clientConfig:
  service:
    name: {{ include "harness-guard.fullname" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ index . 1 }}
    port: {{ $root.Values.service.port }}
  {{- with (include "harness-guard.caBundle" (list $root (index . 2))) }}
  caBundle: {{ . }}
  {{- end }}
{{- end }}

{{/* Never intercept the release's own namespace or kube-system: harness-guard must not be able to lock itself or the cluster out. */}}
{{- define "harness-guard.protectedNamespaces" -}}
{{- list .Release.Namespace "kube-system" | uniq | toJson }}
{{- end }}

{{- define "harness-guard.matchConditions" -}}
{{- include "harness-guard.matchConditionsFor" (list . "") }}
{{- end }}

{{/*
matchConditions per webhook. Arguments: root, and "harnesses" for the AgentHarness webhook.
Every expression is guarded for each operation it can see (DELETE has no object, CREATE no
oldObject): a CEL error under failurePolicy Fail rejects the request. The harness webhook skips
what it would allow anyway, so with harness-guard down those writes never wait for it: objects
being deleted (finalizer removal) and UPDATEs that leave the spec as it was (status, metadata).
*/}}
{{- define "harness-guard.matchConditionsFor" -}}
{{- $root := index . 0 }}{{- $webhook := index . 1 }}
matchConditions:
  - name: not-own-or-kube-system
    expression: {{ printf "!(request.namespace in %s)" (include "harness-guard.protectedNamespaces" $root) | quote }}
  {{- if eq $webhook "harnesses" }}
  - name: not-being-deleted
    expression: "object == null || !has(object.metadata.deletionTimestamp)"
  - name: spec-changed
    expression: "request.operation != 'UPDATE' || oldObject == null || !has(object.spec) || !has(oldObject.spec) || object.spec != oldObject.spec"
  {{- end }}
{{- end }}

{{/* Common fields of every webhook. Argument: root. */}}
{{- define "harness-guard.webhookCommon" -}}
sideEffects: None
admissionReviewVersions: ["v1"]
matchPolicy: Equivalent
timeoutSeconds: {{ .Values.webhooks.timeoutSeconds }}
{{- end }}

{{/* The pod webhooks' selectors: agent-sandbox pods in the sandbox namespaces only. */}}
{{- define "harness-guard.podSelectors" -}}
objectSelector:
  matchExpressions:
    - key: agents.x-k8s.io/sandbox-name-hash
      operator: Exists
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: In
      values: {{ .Values.policy.sandbox.namespaces | toJson }}
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "harness-guard.protectedNamespaces" . }}
{{- end }}

{{- define "harness-guard.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    {{- with .Values.watch.namespaces }}
    # Only the namespaces harness-guard watches: elsewhere it holds no view to judge by.
    - key: kubernetes.io/metadata.name
      operator: In
      values: {{ . | toJson }}
    {{- end }}
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "harness-guard.protectedNamespaces" . }}
{{- end }}

{{/* The image: global.imageRegistry, else image.registry, then repository, then @digest or :tag. */}}
{{- define "harness-guard.image" -}}
{{- $registry := .Values.global.imageRegistry | default .Values.image.registry }}
{{- $name := ternary (printf "%s/%s" $registry .Values.image.repository) .Values.image.repository (ne $registry "") }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $name .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $name (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* imagePullSecrets: global's then the chart's, each written `{name: x}` or `x`, once each. */}}
{{- define "harness-guard.imagePullSecrets" -}}
{{- $names := list }}
{{- range concat (.Values.global.imagePullSecrets | default list) .Values.imagePullSecrets }}
{{- if kindIs "string" . }}
{{- $names = append $names . }}
{{- else }}
{{- $names = append $names .name }}
{{- end }}
{{- end }}
{{- range uniq $names }}
- name: {{ . }}
{{- end }}
{{- end }}

{{/* "true" when the values render a ValidatingWebhookConfiguration (webhooks.yaml's condition). */}}
{{- define "harness-guard.rendersValidating" -}}
{{- $w := .Values.webhooks }}
{{- $refs := or $w.references.secrets $w.references.configMaps $w.references.modelConfigs }}
{{- if or $w.harnesses.enabled $w.pods.enabled $refs }}true{{ end }}
{{- end }}

{{/*
Refusals a draft-07 schema cannot express (they compare two values). Included by the Deployment,
so `helm install`, `helm template` and GitOps renders all stop on them.
*/}}
{{- define "harness-guard.validateValues" -}}
{{- if eq .Values.certs.mode "self-signed" }}
{{- $s := .Values.certs.selfSigned }}
{{- if ge (int $s.renewBeforeDays) (int $s.validityDays) }}
{{- fail (printf "certs.selfSigned.renewBeforeDays (%d) must be less than certs.selfSigned.validityDays (%d): otherwise every check issues a new serving certificate" (int $s.renewBeforeDays) (int $s.validityDays)) }}
{{- end }}
{{- $needed := add $s.validityDays $s.renewBeforeDays | int }}
{{- if le (int $s.caValidityDays) $needed }}
{{- fail (printf "certs.selfSigned.caValidityDays (%d) must be more than validityDays + renewBeforeDays (%d): otherwise every check makes a new CA" (int $s.caValidityDays) $needed) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
watch.labelSelector as an objectSelector (equality-based terms: k=v, k==v, k!=v, k, !k), so the
Secret/ConfigMap guard sees exactly what the view watches. Set-based terms are refused.
*/}}
{{- define "harness-guard.objectSelector" -}}
{{- $selector := .Values.watch.labelSelector | trim }}
{{- if $selector }}
objectSelector:
  matchExpressions:
  {{- range $term := splitList "," $selector }}
  {{- $t := trim $term }}
  {{- if contains "!=" $t }}
  {{- $kv := splitList "!=" $t }}
    - {key: {{ first $kv | trim | quote }}, operator: NotIn, values: [{{ last $kv | trim | quote }}]}
  {{- else if contains "=" $t }}
  {{- $kv := splitList "=" (replace "==" "=" $t) }}
    - {key: {{ first $kv | trim | quote }}, operator: In, values: [{{ last $kv | trim | quote }}]}
  {{- else if regexMatch "^![A-Za-z0-9./_-]+$" $t }}
    - {key: {{ trimPrefix "!" $t | quote }}, operator: DoesNotExist}
  {{- else if regexMatch "^[A-Za-z0-9./_-]+$" $t }}
    - {key: {{ $t | quote }}, operator: Exists}
  {{- else }}
  {{- fail (printf "watch.labelSelector term %q: only equality-based terms (k=v, k!=v, k, !k) can scope the Secret/ConfigMap webhook" $t) }}
  {{- end }}
  {{- end }}
{{- end }}
{{- end }}
