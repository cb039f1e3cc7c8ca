{{/*
The processes, as services/devstack/stack/table.go runs them: kind, ports,
what each needs (its bootstrap.Needs) and which services it calls. Facts of
the binaries, not settings, so they are here rather than in values.
policies are the Vault policies of its Kubernetes-auth role, each a file
of deploy/vault/policies (files/vault-policies here); every service reads
the log pseudonym key (bankbridge-pseudonym).
*/}}
{{- define "bankbridge.table" -}}
consent:
  kind: service
  port: 9101
  adminPort: 9201
  needs: {banks: true, storage: true, bus: true, vault: true}
  policies: [bankbridge-banks, bankbridge-nats, bankbridge-consent, bankbridge-pseudonym, bankbridge-pki-consent]
balance:
  kind: service
  port: 9102
  adminPort: 9202
  needs: {banks: true, consent: true}
  policies: [bankbridge-banks, bankbridge-pseudonym, bankbridge-pki-balance]
receipts:
  kind: service
  port: 9103
  adminPort: 9203
  needs: {banks: true, consent: true, storage: true, bus: true}
  policies: [bankbridge-banks, bankbridge-nats, bankbridge-pseudonym, bankbridge-pki-receipts]
shipping:
  kind: service
  port: 9105
  adminPort: 9205
  httpPort: 9305
  needs: {consent: true, storage: true, bus: true, vault: true, http: true}
  policies: [bankbridge-carriers, bankbridge-nats, bankbridge-pseudonym, bankbridge-pki-shipping]
support:
  kind: service
  port: 9104
  adminPort: 9204
  needs: {banks: true, consent: true, storage: true, bus: true}
  calls: [balance]
  policies: [bankbridge-banks, bankbridge-nats, bankbridge-pseudonym, bankbridge-pki-support]
webhooks:
  kind: service
  port: 9106
  adminPort: 9206
  needs: {storage: true, bus: true, vault: true}
  policies: [bankbridge-webhooks, bankbridge-pseudonym, bankbridge-pki-webhooks]
gateway:
  kind: gateway
  port: 8080
  adminPort: 9200
  calls: [consent, balance, receipts, shipping, support, webhooks]
  policies: [bankbridge-pki-gateway]
sandbox:
  kind: bank
  port: 9400
  adminPort: 9401
  policies: [bankbridge-pki-sandbox]
{{- end -}}

{{/* The processes this release runs: the table less a disabled sandbox. */}}
{{- define "bankbridge.processes" -}}
{{- $t := include "bankbridge.table" . | fromYaml -}}
{{- if not .Values.sandbox.enabled -}}
{{- $_ := unset $t "sandbox" -}}
{{- end -}}
{{- toYaml $t -}}
{{- end -}}

{{- define "bankbridge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of a process's objects: (list $ "balance"). */}}
{{- define "bankbridge.name" -}}
{{- printf "%s-%s" (include "bankbridge.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{- define "bankbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "bankbridge.labels" -}}
{{ include "bankbridge.selectorLabels" . }}
app.kubernetes.io/part-of: bankbridge
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version }}
{{- end -}}

{{/* Labels of every object of the release that is no process's. */}}
{{- define "bankbridge.commonLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: bankbridge
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The DNS names of a process's certificate besides its own name: its
Service's, short and qualified. Its PKI role allows exactly these.
*/}}
{{- define "bankbridge.tlsHosts" -}}
{{- $root := index . 0 -}}
{{- $n := include "bankbridge.name" . -}}
{{- $ns := $root.Release.Namespace -}}
{{- $hosts := list $n (printf "%s.%s" $n $ns) (printf "%s.%s.svc" $n $ns) (printf "%s.%s.svc.cluster.local" $n $ns) -}}
{{- if eq (index . 1) "gateway" -}}
{{- $hosts = concat $hosts ($root.Values.services.gateway.tlsHosts | default list) -}}
{{- end -}}
{{- join "," $hosts -}}
{{- end -}}

{{/* The in-cluster address of a process's port: (list $ "consent" 9101). */}}
{{- define "bankbridge.addr" -}}
{{- printf "%s:%v" (include "bankbridge.name" (list (index . 0) (index . 1))) (index . 2) -}}
{{- end -}}

{{/*
An egress rule to an external dependency, indented for a policy's egress
list, only when its peers are set: an egress rule without peers would
allow every destination.
*/}}
{{- define "bankbridge.egressTo" -}}
{{- if .to -}}
{{- list (dict "to" .to "ports" .ports) | toYaml | nindent 4 -}}
{{- end -}}
{{- end -}}
