{{/*
Names, labels and the checks every template shares.
*/}}

{{/* The chart's name, for the app.kubernetes.io/name label. */}}
{{- define "pulse-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The objects' name: the release's, with the chart's unless the release names it already. */}}
{{- define "pulse-exporter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* What selects this release's pods. */}}
{{- define "pulse-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pulse-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every object's labels. */}}
{{- define "pulse-exporter.labels" -}}
{{ include "pulse-exporter.selectorLabels" . }}
app.kubernetes.io/part-of: pulse-exporter
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The ConfigMap that holds config.yml. */}}
{{- define "pulse-exporter.configMapName" -}}
{{- default (printf "%s-config" (include "pulse-exporter.fullname" .)) .Values.existingConfigMap -}}
{{- end -}}

{{/* The Secret mounted at /etc/pulse-exporter/secrets, or nothing when there is none. */}}
{{- define "pulse-exporter.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else if .Values.secrets -}}
{{- printf "%s-secrets" (include "pulse-exporter.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "pulse-exporter.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The shard count the replicas run: shardCount, or one shard per replica. */}}
{{- define "pulse-exporter.shards" -}}
{{- if eq .Values.workload "Deployment" -}}1{{- else -}}{{ default .Values.replicas .Values.shardCount | int }}{{- end -}}
{{- end -}}

{{/* Each replica's address as Prometheus reaches it (the headless Service's pod names). */}}
{{- define "pulse-exporter.podAddresses" -}}
{{- $full := include "pulse-exporter.fullname" . -}}
{{- range $i := until (int .Values.replicas) }}
- {{ printf "%s-%d.%s.%s.svc:%v" $full $i $full $.Release.Namespace $.Values.service.port }}
{{- end }}
{{- end -}}

{{/*
A Prometheus duration (1h30m, 15s, 500ms) in milliseconds, or a render failure naming the
value: the operator takes any text here and Prometheus then refuses the whole scrape config.
Call with (list "serviceMonitor.interval" "15s").
*/}}
{{- define "pulse-exporter.millis" -}}
{{- $field := index . 0 -}}
{{- $text := toString (index . 1) -}}
{{- if not (regexMatch "^([0-9]+(ms|s|m|h|d|w|y))+$" $text) -}}
{{- fail (printf "%s: %q is not a Prometheus duration such as 30s, 1m or 1h30m" $field $text) -}}
{{- end -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 -}}
{{- $total := 0 -}}
{{- range $part := regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" $text -1 -}}
{{- $unit := regexFind "(ms|s|m|h|d|w|y)$" $part -}}
{{- $total = add $total (mul (trimSuffix $unit $part | int64) (index $units $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/*
Refuses a scrape timeout above its interval: the Prometheus Operator admits the object and
Prometheus then drops the whole scrape config, silently for whoever applied it.
Call with (list "serviceMonitor" .Values.serviceMonitor).
*/}}
{{- define "pulse-exporter.checkTimeout" -}}
{{- $field := index . 0 -}}
{{- $v := index . 1 -}}
{{- $interval := include "pulse-exporter.millis" (list (printf "%s.interval" $field) $v.interval) | int64 -}}
{{- $timeout := include "pulse-exporter.millis" (list (printf "%s.scrapeTimeout" $field) $v.scrapeTimeout) | int64 -}}
{{- if gt $timeout $interval -}}
{{- fail (printf "%s.scrapeTimeout (%s) exceeds %s.interval (%s): Prometheus would refuse the scrape config. Lower the timeout or raise the interval." $field $v.scrapeTimeout $field $v.interval) -}}
{{- end -}}
{{- end -}}

{{/* The render-time refusals of combinations that would install but not work. */}}
{{- define "pulse-exporter.validate" -}}
{{- if not (has .Values.workload (list "StatefulSet" "Deployment")) -}}
{{- fail (printf "workload: %q is neither StatefulSet nor Deployment" .Values.workload) -}}
{{- end -}}
{{- if and (eq .Values.workload "Deployment") (gt (int .Values.shardCount) 1) -}}
{{- fail "shardCount: a Deployment's pods have no ordinal to pick a shard by; use workload: StatefulSet to shard" -}}
{{- end -}}
{{- $shards := include "pulse-exporter.shards" . | int -}}
{{- if or (lt (int .Values.replicas) $shards) (ne (mod (int .Values.replicas) $shards) 0) -}}
{{- fail (printf "replicas: %d replicas cannot run %d shards; use a multiple of shardCount (each shard runs replicas/shardCount times)" (int .Values.replicas) $shards) -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled .Values.podMonitor.enabled -}}
{{- fail "serviceMonitor.enabled and podMonitor.enabled: enable one of them, or every series is scraped twice" -}}
{{- end -}}
{{- if and .Values.existingSecret .Values.secrets -}}
{{- fail "secrets and existingSecret: set one; the pods mount a single Secret at /etc/pulse-exporter/secrets" -}}
{{- end -}}
{{- if and (not .Values.existingConfigMap) (not (include "pulse-exporter.secretName" .)) (contains "/etc/pulse-exporter/secrets/" (toYaml .Values.config)) -}}
{{- fail "config reads files of /etc/pulse-exporter/secrets/ but no Secret is mounted there: set existingSecret to your Secret's name (kubectl create secret generic …), or secrets to create one" -}}
{{- end -}}
{{- if and (not .Values.existingConfigMap) (not .Values.config) -}}
{{- fail "config: empty; give the exporter's config here, or name a ConfigMap holding config.yml in existingConfigMap" -}}
{{- end -}}
{{- end -}}

{{/*
The relabelings and metric relabelings of a ServiceMonitor or PodMonitor endpoint: the
chart's `instance` (namespace/service) and `job`, then the user's; the metric relabelings are
the user's, or the bundle's when left null. Call with (list . .Values.serviceMonitor false),
or true for a PodMonitor, which has no Service to take `instance` and `platform` from.
*/}}
{{- define "pulse-exporter.relabelings" -}}
{{- $root := index . 0 -}}
{{- $m := index . 1 -}}
{{- $pod := index . 2 -}}
{{- $metric := $m.metricRelabelings -}}
{{- if kindIs "invalid" $metric -}}
{{- $metric = $root.Files.Get "files/bundle/metric-relabelings.yaml" | fromYamlArray -}}
{{- end -}}
{{- with $metric }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
relabelings:
  {{- if $pod }}
  - targetLabel: instance
    replacement: {{ printf "%s/%s" $root.Release.Namespace (include "pulse-exporter.fullname" $root) }}
  - targetLabel: platform
    replacement: {{ $root.Values.platform | quote }}
  {{- else }}
  - sourceLabels: [__meta_kubernetes_namespace, __meta_kubernetes_service_name]
    separator: /
    targetLabel: instance
  {{- end }}
  - targetLabel: job
    replacement: pulse-exporter
  {{- with $m.relabelings }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
