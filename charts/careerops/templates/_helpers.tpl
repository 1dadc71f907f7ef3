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
these); call with (dict "ctx" $ "component" "api").
*/}}
{{- define "careerops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "careerops.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
careerops.labels are all the labels of a component's objects; call with
(dict "ctx" $ "component" "api").
*/}}
{{- define "careerops.labels" -}}
helm.sh/chart: {{ include "careerops.chart" .ctx }}
{{ include "careerops.selectorLabels" . }}
app.kubernetes.io/version: {{ include "careerops.imageTag" .ctx | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: careerops
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
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
{{- if and (not .Values.rabbitmq.cluster.enabled) .Values.worker.autoscaling.enabled (not .Values.rabbitmq.external.managementURL) }}
{{- fail "rabbitmq.external.managementURL is required for KEDA (worker.autoscaling.enabled) with an external broker" }}
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
careerops.emailEnabled is "true" when the worker sends users' emails: to email.smtpHost, or to
the chart's Mailpit (email.mailpit.enabled).
*/}}
{{- define "careerops.emailEnabled" -}}
{{- if or .Values.email.mailpit.enabled .Values.email.smtpHost }}true{{ end }}
{{- end }}

{{/*
careerops.env.email is the worker's SMTP_* environment (internal/email.Config); nothing when
email is off.
*/}}
{{- define "careerops.env.email" -}}
{{- if include "careerops.emailEnabled" . }}
{{- $e := .Values.email }}
{{- if not $e.publicBaseURL }}
{{- fail "email.publicBaseURL is required with email (email.smtpHost or email.mailpit.enabled): the emails' links point there" }}
{{- end }}
{{- if $e.mailpit.enabled }}
- name: SMTP_HOST
  value: {{ include "careerops.componentName" (dict "ctx" . "component" "mailpit") | quote }}
- name: SMTP_PORT
  value: {{ $e.mailpit.smtpPort | quote }}
- name: SMTP_TLS
  value: "none"
{{- else }}
- name: SMTP_HOST
  value: {{ $e.smtpHost | quote }}
{{- with $e.smtpPort }}
- name: SMTP_PORT
  value: {{ . | quote }}
{{- end }}
- name: SMTP_TLS
  value: {{ $e.smtpTLS | quote }}
{{- with $e.smtpUsername }}
- name: SMTP_USERNAME
  value: {{ . | quote }}
- name: SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.secrets.smtp.existingSecret }}
      key: {{ $.Values.secrets.smtp.key }}
{{- end }}
{{- end }}
- name: SMTP_FROM
  value: {{ $e.from | quote }}
- name: SMTP_TIMEOUT
  value: "{{ $e.timeoutSeconds }}s"
- name: EMAIL_PER_DOMAIN_PER_MINUTE
  value: {{ $e.perDomainPerMinute | quote }}
- name: PUBLIC_BASE_URL
  value: {{ $e.publicBaseURL | quote }}
{{- end }}
{{- end }}

{{/*
careerops.egress.email is the worker's egress rule to the SMTP server: the chart's Mailpit, or
networkPolicy.smtp; nothing when email is off.
*/}}
{{- define "careerops.egress.email" -}}
{{- if .Values.email.mailpit.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "careerops.selectorLabels" (dict "ctx" . "component" "mailpit") | nindent 10 }}
  ports:
    - port: {{ .Values.email.mailpit.smtpPort }}
      protocol: TCP
{{- else if .Values.email.smtpHost }}
{{- with .Values.networkPolicy.smtp }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}
