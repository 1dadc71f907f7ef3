{{/*
careerops.name is the chart name, or nameOverride.
*/}}
{{- define "careerops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
careerops.fullname is "<release>-<name>" (just the release name when it already contains the
chart name), or fullnameOverride; 63 characters at most, as DNS names need.
*/}}
{{- define "careerops.fullname" -}}
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

{{/*
careerops.componentName is "<fullname>-<component>"; call with (dict "ctx" $ "component" "api").
*/}}
{{- define "careerops.componentName" -}}
{{- printf "%s-%s" (include "careerops.fullname" .ctx | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{/*
careerops.chart is "<name>-<version>" for the helm.sh/chart label.
*/}}
{{- define "careerops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
careerops.selectorLabels are the labels that never change for a component (selectors use only
these); call with (dict "ctx" $ "component" "api"). The workers of one job kind add "worker"
(the kind's key in worker.kinds): (dict "ctx" $ "component" "worker" "worker" "cover-letter").
*/}}
{{- define "careerops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "careerops.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .worker }}
careerops.io/worker: {{ . }}
{{- end }}
{{- end }}

{{/*
careerops.labels are all the labels of a component's objects; call with
(dict "ctx" $ "component" "api"), and for one job kind's workers add "worker" and "jobKind"
(the kind's name, e.g. cover-letter.generate).
*/}}
{{- define "careerops.labels" -}}
helm.sh/chart: {{ include "careerops.chart" .ctx }}
{{ include "careerops.selectorLabels" . }}
{{- with .jobKind }}
careerops.io/job-kind: {{ . }}
{{- end }}
app.kubernetes.io/version: {{ include "careerops.imageTag" .ctx | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: careerops
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/*
careerops.workerName is "<fullname>-worker-<key>", the name of one job kind's worker objects
(Deployment, ScaledObject, NetworkPolicy); call with (dict "ctx" $ "key" "cover-letter"). The
full name is cut so the whole stays within 63 characters (keys have at most 24).
*/}}
{{- define "careerops.workerName" -}}
{{- printf "%s-worker-%s" (include "careerops.fullname" .ctx | trunc (int (sub 55 (len .key))) | trimSuffix "-") .key }}
{{- end }}

{{/*
careerops.workerKinds is, as JSON {"kinds": [...]}, the job kinds whose workers are rendered:
the enabled entries of worker.kinds in the order of their keys, without those that send email
(smtp) while email is off (careerops.emailEnabled). Each has the shared worker settings with the kind's
overrides applied, the one place they are merged: key, name (careerops.workerName), kind, llm,
smtp, concurrency, replicas, resources, autoscaling. Use it as
(include "careerops.workerKinds" . | fromJson).kinds.
*/}}
{{- define "careerops.workerKinds" -}}
{{- $w := .Values.worker }}
{{- $out := list }}
{{- range $key := keys ($w.kinds | default dict) | sortAlpha }}
{{- $k := get $w.kinds $key }}
{{- if and $k.enabled (or (not $k.smtp) (include "careerops.emailEnabled" $)) }}
{{- $as := deepCopy $w.autoscaling }}
{{- range $ak, $av := $k.autoscaling | default dict }}
{{- $_ := set $as $ak $av }}
{{- end }}
{{- $out = append $out (dict
    "key" $key
    "name" (include "careerops.workerName" (dict "ctx" $ "key" $key))
    "kind" $k.kind
    "llm" (default false $k.llm)
    "smtp" (default false $k.smtp)
    "concurrency" (ternary $k.concurrency $w.concurrency (hasKey $k "concurrency"))
    "replicas" (ternary $k.replicas $w.replicas (hasKey $k "replicas"))
    "resources" (ternary $k.resources $w.resources (hasKey $k "resources"))
    "autoscaling" $as) }}
{{- end }}
{{- end }}
{{- toJson (dict "kinds" $out) }}
{{- end }}

{{/*
careerops.imageTag is image.tag, or the chart's appVersion when it is empty.
*/}}
{{- define "careerops.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
careerops.image is the image reference: repository@digest when a digest is set, else
repository:tag.
*/}}
{{- define "careerops.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "careerops.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
careerops.serviceAccountName is the ServiceAccount of the api, worker and fakeopenai pods.
*/}}
{{- define "careerops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "careerops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
careerops.rabbitmqName is the RabbitmqCluster's name (also its Service's).
*/}}
{{- define "careerops.rabbitmqName" -}}
{{- default (printf "%s-rabbitmq" (include "careerops.fullname" . | trunc 54 | trimSuffix "-")) .Values.rabbitmq.cluster.name }}
{{- end }}

{{/*
careerops.brokerSecretName is the Secret with the broker's credentials: the operator's
"<cluster>-default-user", or rabbitmq.external.existingSecret.
*/}}
{{- define "careerops.brokerSecretName" -}}
{{- if .Values.rabbitmq.cluster.enabled }}
{{- printf "%s-default-user" (include "careerops.rabbitmqName" .) }}
{{- else }}
{{- required "rabbitmq.external.existingSecret is required when rabbitmq.cluster.enabled is false" .Values.rabbitmq.external.existingSecret }}
{{- end }}
{{- end }}

{{/*
careerops.fakeopenaiURL is the in-cluster base URL of fakeopenai.
*/}}
{{- define "careerops.fakeopenaiURL" -}}
{{- printf "http://%s:%d/v1" (include "careerops.componentName" (dict "ctx" . "component" "fakeopenai")) (int .Values.fakeopenai.port) }}
{{- end }}

{{/*
careerops.podSecurityContext and careerops.containerSecurityContext render the security
contexts every pod and container of the chart gets.
*/}}
{{- define "careerops.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "careerops.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}

{{/*
careerops.env.database is the DATABASE_URL env entry, from the existing Secret.
*/}}
{{- define "careerops.env.database" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.database.existingSecret }}
      key: {{ .Values.secrets.database.key }}
{{- end }}

{{/*
careerops.env.rabbitmq is the RABBITMQ_URL env entry: the operator's connection_string, or the
external broker's Secret.
*/}}
{{- define "careerops.env.rabbitmq" -}}
- name: RABBITMQ_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "careerops.brokerSecretName" . }}
      key: {{ ternary "connection_string" .Values.rabbitmq.external.urlKey .Values.rabbitmq.cluster.enabled }}
{{- end }}

{{/*
careerops.env.llmEndpoint is the env entries of an LLM endpoint's settings that are set; call
with (dict "values" .Values.llm "names" (dict "apiType" "OPENAI_API_TYPE" …)): each value
under its variable's name, in the order of the keys; empty and zero values are left to the
worker's defaults.
*/}}
{{- define "careerops.env.llmEndpoint" -}}
{{- $v := .values }}
{{- range $key, $env := .names }}
{{- with get $v $key }}
- name: {{ $env }}
  value: {{ . | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
careerops.env.otel is the OpenTelemetry SDK environment of a component; call with
(dict "ctx" $ "component" "api").
*/}}
{{- define "careerops.env.otel" -}}
{{- $v := .ctx.Values.otel }}
- name: OTEL_SERVICE_NAME
  value: careerops-{{ .component }}
{{- with $v.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
{{- end }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $v.sampler | quote }}
{{- if $v.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $v.samplerArg | quote }}
{{- end }}
{{- $attrs := dict "service.namespace" "careerops" "service.version" (include "careerops.imageTag" .ctx) "deployment.environment.name" .ctx.Values.environment }}
{{- $attrs = merge (deepCopy $v.resourceAttributes) $attrs }}
{{- $pairs := list }}
{{- range $k := keys $attrs | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $k (get $attrs $k)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $pairs | quote }}
{{- end }}

{{/*
careerops.topologySpread renders the topology spread constraints of a component; call with
(dict "ctx" $ "component" "api").
*/}}
{{- define "careerops.topologySpread" -}}
{{- $ts := .ctx.Values.topologySpread }}
{{- if $ts.enabled }}
topologySpreadConstraints:
{{- range $ts.topologyKeys }}
  - maxSkew: {{ $ts.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $ts.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "careerops.selectorLabels" $ | nindent 8 }}
    matchLabelKeys:
      - pod-template-hash
{{- end }}
{{- end }}
{{- end }}

{{/*
careerops.workerGraceSeconds is the worker's terminationGracePeriodSeconds: drain timeout +
LLM timeout + margin, so a scale-in never kills a job in the middle of an LLM call.
*/}}
{{- define "careerops.workerGraceSeconds" -}}
{{- add .Values.worker.drainTimeoutSeconds .Values.worker.llmTimeoutSeconds .Values.worker.terminationGraceMarginSeconds }}
{{- end }}

{{/*
careerops.validate fails the render on combinations the schema cannot express.
*/}}
{{- define "careerops.validate" -}}
{{- if and .Values.rabbitmq.cluster.enabled (ne .Values.rabbitmq.vhost "/") }}
{{- fail "rabbitmq.vhost must be \"/\" with rabbitmq.cluster.enabled: the operator's connection_string uses the default vhost" }}
{{- end }}
{{- $kinds := (include "careerops.workerKinds" . | fromJson).kinds }}
{{- $seen := dict }}
{{- range $kinds }}
{{- if hasKey $seen .kind }}
{{- fail (printf "worker.kinds.%s and worker.kinds.%s both run the job kind %s: one worker Deployment per kind" (get $seen .kind) .key .kind) }}
{{- end }}
{{- $_ := set $seen .kind .key }}
{{- if and (not $.Values.rabbitmq.cluster.enabled) .autoscaling.enabled (not $.Values.rabbitmq.external.managementURL) }}
{{- fail (printf "rabbitmq.external.managementURL is required for KEDA (autoscaling of worker.kinds.%s) with an external broker" .key) }}
{{- end }}
{{- end }}
{{- with .Values.email.smtp }}
{{- if and .host .username (not .existingSecret) (not .password) }}
{{- fail "email.smtp.username is set: give its password with email.smtp.existingSecret (or email.smtp.password)" }}
{{- end }}
{{- end }}
{{- $worst := add .Values.llm.budgetMaxWaitSeconds .Values.worker.llmTimeoutSeconds 30 }}
{{- if and .Values.rabbitmq.cluster.enabled (le (int .Values.rabbitmq.cluster.consumerTimeoutSeconds) (int $worst)) }}
{{- fail (printf "rabbitmq.cluster.consumerTimeoutSeconds (%v) must exceed llm.budgetMaxWaitSeconds + worker.llmTimeoutSeconds + 30 (%v)" .Values.rabbitmq.cluster.consumerTimeoutSeconds $worst) }}
{{- end }}
{{- end }}

{{/*
careerops.egress.common are the egress rules the api, the worker and the migrations share: DNS,
PostgreSQL, RabbitMQ (the operator's pods, or networkPolicy.broker) and the OTLP collector.
*/}}
{{- define "careerops.egress.common" -}}
{{- $np := .Values.networkPolicy }}
{{- with $np.dns }}
{{ toYaml . }}
{{- end }}
{{- with $np.database }}
{{ toYaml . }}
{{- end }}
{{- if .Values.rabbitmq.cluster.enabled }}
- to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/name: {{ include "careerops.rabbitmqName" . }}
  ports:
    - port: 5672
      protocol: TCP
{{- else }}
{{- with $np.broker }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- if .Values.otel.endpoint }}
{{- with $np.collector }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
careerops.emailEnabled is "true" when email is on: email.smtp.host is set, or the chart's Mailpit
is (email.mailpit.enabled, which then takes the email); only then are the workers of the kinds
that send email (smtp) rendered.
*/}}
{{- define "careerops.emailEnabled" -}}
{{- if or .Values.email.mailpit.enabled .Values.email.smtp.host }}true{{ end }}
{{- end }}

{{/*
careerops.smtpPort is the port the email workers send to: Mailpit's email.mailpit.smtpPort when
Mailpit is on; else email.smtp.port, or the port its TLS mode implies: 465 for implicit TLS,
587 (submission) otherwise.
*/}}
{{- define "careerops.smtpPort" -}}
{{- $s := .Values.email.smtp }}
{{- if .Values.email.mailpit.enabled }}{{ .Values.email.mailpit.smtpPort }}
{{- else if $s.port }}{{ $s.port }}{{ else if eq $s.tls "tls" }}465{{ else }}587{{ end }}
{{- end }}

{{/*
careerops.smtpSecretName is the Secret holding the SMTP password: email.smtp.existingSecret, or
"<fullname>-smtp" that the chart creates from email.smtp.password; empty when there is none or
when Mailpit (no authentication) takes the email.
*/}}
{{- define "careerops.smtpSecretName" -}}
{{- $s := .Values.email.smtp }}
{{- if .Values.email.mailpit.enabled }}
{{- else if $s.existingSecret }}{{ $s.existingSecret }}
{{- else if $s.password }}{{ printf "%s-smtp" (include "careerops.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}
{{- end }}

{{/*
careerops.env.email is the environment of the workers of a kind that sends email (smtp): SMTP_*
(to the chart's Mailpit, plain and without authentication, when email.mailpit.enabled), and
JWT_SECRET from the api's Secret (it signs the unsubscribe links). They are rendered only when
careerops.emailEnabled.
*/}}
{{- define "careerops.env.email" -}}
{{- $e := .Values.email }}
{{- if $e.mailpit.enabled }}
- name: SMTP_HOST
  value: {{ include "careerops.componentName" (dict "ctx" . "component" "mailpit") | quote }}
- name: SMTP_PORT
  value: {{ include "careerops.smtpPort" . | quote }}
- name: SMTP_TLS
  value: "none"
{{- else }}
- name: SMTP_HOST
  value: {{ $e.smtp.host | quote }}
- name: SMTP_PORT
  value: {{ include "careerops.smtpPort" . | quote }}
- name: SMTP_TLS
  value: {{ $e.smtp.tls | quote }}
{{- with $e.smtp.username }}
- name: SMTP_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- with include "careerops.smtpSecretName" . }}
- name: SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $e.smtp.passwordKey }}
{{- end }}
{{- end }}
{{- with $e.smtp.from }}
- name: SMTP_FROM
  value: {{ . | quote }}
{{- end }}
{{- with $e.smtp.timeoutSeconds }}
- name: SMTP_TIMEOUT
  value: "{{ . }}s"
{{- end }}
{{- if not (kindIs "invalid" $e.perDomainPerMinute) }}
- name: EMAIL_PER_DOMAIN_PER_MINUTE
  value: {{ $e.perDomainPerMinute | quote }}
{{- end }}
{{- $base := $e.publicBaseURL }}
{{- if and (not $base) .Values.api.ingress.enabled .Values.api.ingress.hosts }}
{{- $base = printf "https://%s" (first .Values.api.ingress.hosts).host }}
{{- end }}
{{- with $base }}
- name: PUBLIC_BASE_URL
  value: {{ . | quote }}
{{- end }}
- name: JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.jwt.existingSecret }}
      key: {{ .Values.secrets.jwt.key }}
{{- end }}

{{/*
careerops.egress.email is the egress rule of the workers of a kind that sends email: to the
chart's Mailpit pods when email.mailpit.enabled, else the SMTP port (careerops.smtpPort) to
networkPolicy.smtpTo or anywhere.
*/}}
{{- define "careerops.egress.email" -}}
{{- if .Values.email.mailpit.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "careerops.selectorLabels" (dict "ctx" . "component" "mailpit") | nindent 10 }}
  ports:
    - port: {{ include "careerops.smtpPort" . }}
      protocol: TCP
{{- else }}
- ports:
    - port: {{ include "careerops.smtpPort" . }}
      protocol: TCP
  {{- with .Values.networkPolicy.smtpTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
