{{/* Names: <release>-rendercost unless the release name already holds the chart's name. */}}
{{- define "rendercost.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rendercost.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rendercost.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rendercost.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "rendercost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "rendercost.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* A worker pool's Deployment name; its pods' names (and so their --worker-id) start with it. */}}
{{- define "rendercost.poolName" -}}
{{- printf "%s-worker-%s" (include "rendercost.fullname" .root) .pool.name -}}
{{- end -}}

{{/* The env every rendercost container gets: secrets by reference, then plain settings. */}}
{{- define "rendercost.env" -}}
- name: RENDERCOST_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.database.name is required" .Values.secrets.database.name }}
      key: {{ .Values.secrets.database.urlKey }}
{{- with .Values.secrets.redis }}
{{- if .name }}
- name: RENDERCOST_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .urlKey }}
{{- end }}
{{- end }}
{{- with .Values.secrets.s3 }}
{{- if .name }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .secretAccessKeyKey }}
{{- end }}
{{- end }}
- name: AWS_REGION
  value: {{ .Values.aws.region | quote }}
{{- if .Values.aws.endpointUrlS3 }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ .Values.aws.endpointUrlS3 | quote }}
{{- end }}
{{- if .Values.configToml }}
- name: RENDERCOST_CONFIG
  value: /etc/rendercost/rendercost.toml
{{- end }}
{{- range $name, $value := .Values.settings }}
- name: {{ printf "RENDERCOST_%s" (upper $name) }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/*
KEDA's query for one pool: jobs queued at the priorities it scales on, plus the jobs its own workers
hold (running, leased to a pod of this pool: --worker-id is the pod name, which starts with the
Deployment's name). One number; replicas = ceil(number / jobsPerWorker). priority_rank is the
indexed form of priority (0 interactive, 1 batch: PRIORITY_RANK in queue/codec.py).
*/}}
{{- define "rendercost.kedaQuery" -}}
{{- $ranks := dict "interactive" "0" "batch" "1" -}}
{{- $list := list -}}
{{- range (.pool.scaleOn | default .pool.priorities) -}}
{{- $list = append $list (required (printf "unknown priority %q (interactive, batch)" .) (get $ranks .)) -}}
{{- end -}}
SELECT COALESCE(COUNT(*), 0) FROM jobs WHERE (state = 'queued' AND priority_rank IN ({{ join ", " $list }})) OR (state = 'running' AND lease_owner LIKE '{{ include "rendercost.poolName" . }}-%')
{{- end -}}
