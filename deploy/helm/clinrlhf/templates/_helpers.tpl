{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "clinrlhf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "clinrlhf.fullname" -}}
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

{{- define "clinrlhf.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "clinrlhf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clinrlhf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "clinrlhf.labels" -}}
helm.sh/chart: {{ include "clinrlhf.chart" . }}
{{ include "clinrlhf.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "clinrlhf.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clinrlhf.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret that holds every secret variable; created outside the chart. */}}
{{- define "clinrlhf.secretName" -}}
{{- required "existingSecret must name a Secret you created (see deploy/README.md)" .Values.existingSecret }}
{{- end }}
