{{/*
Names. Everything the chart creates is named from the release, so two releases never share an
object: namespaced objects are named `kiln.fullname` in the release's namespace, and cluster-scoped
objects (ClusterRoles, ClusterRoleBindings) carry the release name too.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "kiln.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
`<release>-<chart>`, or the release name alone when it already contains the chart name, or
fullnameOverride. Truncated to 52 characters so that the longest suffix the chart appends
(`-image-pusher`, 13 characters) still fits a 63-character label value.
*/}}
{{- define "kiln.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* `<chart>-<version>` for the helm.sh/chart label. */}}
{{- define "kiln.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The controller's ServiceAccount. */}}
{{- define "kiln.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kiln.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The standard labels of every object. */}}
{{- define "kiln.labels" -}}
helm.sh/chart: {{ include "kiln.chart" . }}
{{ include "kiln.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kiln
{{- end -}}

{{/* The labels that select the controller's Pods (never change them on upgrade). */}}
{{- define "kiln.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kiln.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{/*
An image reference from {repository, tag, digest}: `repository@digest` when a digest is set
(pinned), else `repository:tag`, the tag defaulting to the chart's appVersion.
*/}}
{{- define "kiln.image" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The labels that select the separate webhook receiver's Pods. */}}
{{- define "kiln.webhooksSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kiln.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhooks
{{- end -}}

{{/* The standard labels of the separate webhook receiver's objects. */}}
{{- define "kiln.webhooksLabels" -}}
helm.sh/chart: {{ include "kiln.chart" . }}
{{ include "kiln.webhooksSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kiln
{{- end -}}

{{/* The labels that select the seccomp profile installer's Pods. */}}
{{- define "kiln.seccompSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kiln.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: seccomp-profile
{{- end -}}

{{/* The standard labels of the seccomp profile installer's objects. */}}
{{- define "kiln.seccompLabels" -}}
helm.sh/chart: {{ include "kiln.chart" . }}
{{ include "kiln.seccompSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kiln
{{- end -}}

{{/* The in-cluster registry's objects (Deployment, Service, ConfigMap, PersistentVolumeClaim). */}}
{{- define "kiln.registryName" -}}
{{- printf "%s-registry" (include "kiln.fullname" .) -}}
{{- end -}}

{{/* The labels that select the in-cluster registry's Pod. */}}
{{- define "kiln.registrySelectorLabels" -}}
app.kubernetes.io/name: {{ include "kiln.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: registry
{{- end -}}

{{/* The standard labels of the in-cluster registry's objects. */}}
{{- define "kiln.registryLabels" -}}
helm.sh/chart: {{ include "kiln.chart" . }}
{{ include "kiln.registrySelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kiln
{{- end -}}

{{/*
The controller's `--registry`: registry.host when set, else the in-cluster registry's Service
(`<fullname>-registry.<namespace>.svc:<port>`) when it is deployed, else empty.
*/}}
{{- define "kiln.registryHost" -}}
{{- if .Values.registry.host -}}
{{- .Values.registry.host -}}
{{- else if .Values.registry.deploy.enabled -}}
{{- printf "%s.%s.svc:%v" (include "kiln.registryName" .) .Release.Namespace .Values.registry.deploy.port -}}
{{- end -}}
{{- end -}}

{{/*
`--insecure-registry-internal`: registry.insecure, or an in-cluster registry serving plain HTTP
(no deploy.tlsSecret). "true" or "false".
*/}}
{{- define "kiln.registryInsecure" -}}
{{- or .Values.registry.insecure (and .Values.registry.deploy.enabled (not .Values.registry.deploy.tlsSecret)) -}}
{{- end -}}

{{/*
The token endpoint the registry sends clients to (`auth.token.realm`): deploy.tokenRealm, or the
controller's Service, which every replica answers on.
*/}}
{{- define "kiln.registryTokenRealm" -}}
{{- if .Values.registry.deploy.tokenRealm -}}
{{- .Values.registry.deploy.tokenRealm -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v/registry/token" (include "kiln.fullname" .) .Release.Namespace .Values.service.port -}}
{{- end -}}
{{- end -}}
