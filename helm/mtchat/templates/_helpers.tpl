{{/* Chart name, overridable. */}}
{{- define "mtchat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: release-chart unless the release name already contains it. */}}
{{- define "mtchat.fullname" -}}
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

{{- define "mtchat.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "mtchat.labels" -}}
helm.sh/chart: {{ include "mtchat.chart" . }}
{{ include "mtchat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mtchat
{{- end -}}

{{/* Labels selecting every pod of the release. */}}
{{- define "mtchat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mtchat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Per-role labels: call with (dict "ctx" $ "component" "edge"). */}}
{{- define "mtchat.componentLabels" -}}
{{ include "mtchat.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mtchat.componentSelectorLabels" -}}
{{ include "mtchat.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mtchat.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "mtchat.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "mtchat.fullname" .)) -}}
{{- end -}}

{{- define "mtchat.configMapName" -}}
{{- printf "%s-config" (include "mtchat.fullname" .) -}}
{{- end -}}

{{/* Seconds Kubernetes waits after preStop begins: the sleep, the HTTP drain, then sockets, mailboxes and leases. */}}
{{- define "mtchat.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdown.preStopSleepSeconds .Values.shutdown.drainSeconds .Values.shutdown.releaseSeconds -}}
{{- end -}}

{{/*
Pod template shared by both roles: call with (dict "ctx" $ "component" "edge" "role" .Values.edge).
*/}}
{{- define "mtchat.podTemplate" -}}
{{- $root := .ctx -}}
metadata:
  labels:
    {{- include "mtchat.componentLabels" (dict "ctx" $root "component" .component) | nindent 4 }}
  annotations:
    # Roll the pods when their configuration changes.
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    {{- with .role.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ include "mtchat.terminationGracePeriodSeconds" $root }}
  containers:
    - name: {{ .component }}
      image: {{ include "mtchat.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      # The image's CMD is `node dist/src/main.js`; args alone would replace it, so both are given.
      command: ["node", "dist/src/main.js"]
      args: ["--role", {{ .component | quote }}]
      ports:
        - name: http
          containerPort: {{ $root.Values.containerPort }}
          protocol: TCP
      env:
        - name: PORT
          value: {{ $root.Values.containerPort | quote }}
      envFrom:
        - configMapRef:
            name: {{ include "mtchat.configMapName" $root }}
        - secretRef:
            name: {{ include "mtchat.secretName" $root }}
      livenessProbe:
        httpGet:
          path: {{ $root.Values.probes.liveness.path }}
          port: http
        initialDelaySeconds: {{ $root.Values.probes.liveness.initialDelaySeconds }}
        periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
      readinessProbe:
        httpGet:
          path: {{ $root.Values.probes.readiness.path }}
          port: http
        initialDelaySeconds: {{ $root.Values.probes.readiness.initialDelaySeconds }}
        periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
      lifecycle:
        preStop:
          exec:
            command: ["sleep", {{ $root.Values.shutdown.preStopSleepSeconds | quote }}]
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .role.resources | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir: {}
  {{- with .role.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .role.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .role.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
