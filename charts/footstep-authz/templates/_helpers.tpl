{{/* Chart name, 63 characters at most (a DNS label). */}}
{{- define "footstep-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "footstep-authz.fullname" -}}
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

{{- define "footstep-authz.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: never change them, a Deployment's selector is immutable. */}}
{{- define "footstep-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "footstep-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object: the base's, plus Helm's. */}}
{{- define "footstep-authz.labels" -}}
{{ include "footstep-authz.selectorLabels" . }}
app.kubernetes.io/component: authz
app.kubernetes.io/part-of: footstep
app.kubernetes.io/version: {{ include "footstep-authz.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "footstep-authz.chart" . }}
{{- end }}

{{- define "footstep-authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "footstep-authz.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "footstep-authz.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "footstep-authz.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "footstep-authz.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Where each mounted Secret goes in the container. */}}
{{- define "footstep-authz.mounts" -}}
nats-credentials: /etc/footstep/nats
nats-nkey: /etc/footstep/nats-nkey
nats-ca: /etc/footstep/nats-ca
nats-client: /etc/footstep/nats-client
tls: /etc/footstep/tls
tls-client-ca: /etc/footstep/tls-client-ca
{{- end }}

{{/*
The Secret volumes: name -> Secret name, for each Secret the values name.
*/}}
{{- define "footstep-authz.secretVolumes" -}}
{{- $a := .Values.nats.auth }}
{{- $t := .Values.nats.tls }}
{{- $v := dict }}
{{- if $a.credsSecret.name }}{{ $_ := set $v "nats-credentials" $a.credsSecret.name }}{{ end }}
{{- if $a.nkeySecret.name }}{{ $_ := set $v "nats-nkey" $a.nkeySecret.name }}{{ end }}
{{- if $t.caSecret.name }}{{ $_ := set $v "nats-ca" $t.caSecret.name }}{{ end }}
{{- if $t.clientCertSecret.name }}{{ $_ := set $v "nats-client" $t.clientCertSecret.name }}{{ end }}
{{- if .Values.tls.secretName }}{{ $_ := set $v "tls" .Values.tls.secretName }}{{ end }}
{{- if .Values.tls.clientCASecret.name }}{{ $_ := set $v "tls-client-ca" .Values.tls.clientCASecret.name }}{{ end }}
{{- toYaml $v }}
{{- end }}

{{/* The settings ConfigMap's data, as YAML: FOOTSTEP_* -> value. */}}
{{- define "footstep-authz.settings" -}}
{{- include "footstep-authz.validate" . }}
{{- $m := include "footstep-authz.mounts" . | fromYaml }}
{{- $a := .Values.nats.auth }}
{{- $t := .Values.nats.tls }}
{{- $s := dict
  "FOOTSTEP_GRPC_ADDR" (printf ":%d" (int .Values.ports.grpc))
  "FOOTSTEP_HTTP_ADDR" (ternary (printf ":%d" (int .Values.ports.http)) "" (gt (int .Values.ports.http) 0))
  "FOOTSTEP_ADMIN_ADDR" (printf ":%d" (int .Values.ports.admin))
  "FOOTSTEP_NATS_URL" .Values.nats.url
  "FOOTSTEP_KV_BUCKET" .Values.nats.kvBucket
  "FOOTSTEP_KV_REPLICAS" (toString (int .Values.nats.kvReplicas))
  "FOOTSTEP_CACHE_SIZE" .Values.settings.cacheSize
  "FOOTSTEP_LOG_LEVEL" .Values.settings.logLevel
  "FOOTSTEP_MODE" .Values.settings.mode
  "FOOTSTEP_MAX_STALENESS" .Values.settings.maxStaleness
  "FOOTSTEP_STALE_POLICY" .Values.settings.stalePolicy
  "FOOTSTEP_SHUTDOWN_TIMEOUT" .Values.settings.shutdownTimeout
}}
{{- if $a.credsSecret.name }}{{ $_ := set $s "FOOTSTEP_NATS_CREDS" (printf "%s/%s" (get $m "nats-credentials") $a.credsSecret.key) }}{{ end }}
{{- if $a.nkeySecret.name }}{{ $_ := set $s "FOOTSTEP_NATS_NKEY" (printf "%s/%s" (get $m "nats-nkey") $a.nkeySecret.key) }}{{ end }}
{{- if $t.caSecret.name }}{{ $_ := set $s "FOOTSTEP_NATS_TLS_CA" (printf "%s/%s" (get $m "nats-ca") $t.caSecret.key) }}{{ end }}
{{- if $t.clientCertSecret.name }}
{{- $_ := set $s "FOOTSTEP_NATS_TLS_CERT" (printf "%s/%s" (get $m "nats-client") $t.clientCertSecret.certKey) }}
{{- $_ := set $s "FOOTSTEP_NATS_TLS_KEY" (printf "%s/%s" (get $m "nats-client") $t.clientCertSecret.keyKey) }}
{{- end }}
{{- if .Values.tls.secretName }}
{{- $_ := set $s "FOOTSTEP_TLS_CERT" (printf "%s/tls.crt" (get $m "tls")) }}
{{- $_ := set $s "FOOTSTEP_TLS_KEY" (printf "%s/tls.key" (get $m "tls")) }}
{{- end }}
{{- if .Values.tls.clientCASecret.name }}{{ $_ := set $s "FOOTSTEP_TLS_CLIENT_CA" (printf "%s/%s" (get $m "tls-client-ca") .Values.tls.clientCASecret.key) }}{{ end }}
{{- range $k, $v := .Values.extraSettings }}{{ $_ := set $s $k (toString $v) }}{{ end }}
{{- toYaml $s }}
{{- end }}

{{/*
The TCP ports of the NATS URLs (4222 when a URL names none), for the NetworkPolicy.
*/}}
{{- define "footstep-authz.natsPorts" -}}
{{- $ports := list }}
{{- range splitList "," .Values.nats.url }}
{{- $hostport := regexReplaceAll "^[a-zA-Z]+://" (trim .) "" }}
{{- $hostport = regexReplaceAll "^[^@/]*@" $hostport "" }}
{{- $hostport = regexReplaceAll "/.*$" $hostport "" }}
{{- $port := 4222 }}
{{- if regexMatch ":[0-9]+$" $hostport }}
{{- $port = regexFind "[0-9]+$" $hostport | atoi }}
{{- end }}
{{- $ports = append $ports $port }}
{{- end }}
{{- toJson (uniq $ports) }}
{{- end }}

{{/*
Rules that span several values, which values.schema.json cannot express. Each fails
with the values to change.
*/}}
{{- define "footstep-authz.validate" -}}
{{- $a := .Values.nats.auth }}
{{- $n := 0 }}
{{- range (list $a.credsSecret.name $a.nkeySecret.name $a.userPasswordSecret.name $a.tokenSecret.name) }}{{ if . }}{{ $n = add1 $n }}{{ end }}{{ end }}
{{- if gt $n 1 }}
{{- fail "nats.auth: set at most one of credsSecret.name, nkeySecret.name, userPasswordSecret.name and tokenSecret.name" }}
{{- end }}
{{- $p := .Values.ports }}
{{- if or (eq (int $p.grpc) (int $p.admin)) (eq (int $p.grpc) (int $p.http)) (eq (int $p.http) (int $p.admin)) }}
{{- fail (printf "ports: grpc (%d), http (%d) and admin (%d) must differ" (int $p.grpc) (int $p.http) (int $p.admin)) }}
{{- end }}
{{- if and .Values.tls.clientCASecret.name (not .Values.tls.secretName) }}
{{- fail "tls.clientCASecret needs tls.secretName: mutual TLS needs a server certificate" }}
{{- end }}
{{- if ge (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "preStopSleepSeconds (%d) must be below terminationGracePeriodSeconds (%d): the API server refuses the Deployment otherwise" (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds)) }}
{{- end }}
{{- $min := ternary (int .Values.autoscaling.minReplicas) (int .Values.replicaCount) .Values.autoscaling.enabled }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) $min) }}
{{- fail (printf "autoscaling.maxReplicas (%d) is below autoscaling.minReplicas (%d)" (int .Values.autoscaling.maxReplicas) $min) }}
{{- end }}
{{- if and .Values.pdb.enabled (ge (int .Values.pdb.minAvailable) $min) }}
{{- fail (printf "pdb.minAvailable (%d) must be below the replicas (%d), or no node can ever be drained" (int .Values.pdb.minAvailable) $min) }}
{{- end }}
{{- end }}
