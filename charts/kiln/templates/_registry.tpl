{{/*
The in-cluster registry's config.yml (CNCF distribution): storage on the PersistentVolumeClaim,
HTTPS with deploy.tlsSecret, and with registry.tokenSecret token authentication whose realm,
service and issuer are the controller's token server's, trusting the Secret's certificate.
*/}}
{{- define "kiln.registryConfig" -}}
{{- $d := .Values.registry.deploy -}}
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :{{ $d.port }}
  headers:
    X-Content-Type-Options: [nosniff]
  {{- if $d.tlsSecret }}
  tls:
    certificate: /var/run/secrets/kiln.dev/registry-tls/tls.crt
    key: /var/run/secrets/kiln.dev/registry-tls/tls.key
  {{- end }}
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
{{- if .Values.registry.tokenSecret }}
auth:
  token:
    realm: {{ include "kiln.registryTokenRealm" . | quote }}
    service: {{ .Values.registry.tokenService | quote }}
    issuer: {{ .Values.registry.tokenIssuer | quote }}
    rootcertbundle: /var/run/secrets/kiln.dev/registry-token/tls.crt
{{- end }}
{{- end -}}
