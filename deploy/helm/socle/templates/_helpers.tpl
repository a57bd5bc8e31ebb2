{{- define "socle.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "socle.fullname" -}}
{{- printf "%s-%s" .Release.Name (include "socle.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "socle.labels" -}}
app.kubernetes.io/name: {{ include "socle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "socle.selector" -}}
app.kubernetes.io/name: {{ include "socle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "socle.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecret }}{{- else -}}{{ include "socle.fullname" . }}-database{{- end -}}
{{- end -}}

{{- define "socle.hasDatabase" -}}
{{- if or .Values.database.existingSecret .Values.database.url -}}true{{- end -}}
{{- end -}}
