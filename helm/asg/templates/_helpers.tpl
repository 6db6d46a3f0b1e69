{{/* Names. */}}
{{- define "asg.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "asg.injector" -}}
{{- printf "%s-injector" (include "asg.fullname" .) -}}
{{- end -}}

{{- define "asg.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "asg.injectorSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end -}}

{{- define "asg.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces never injected: the release's own and the excluded ones. */}}
{{- define "asg.excludedNamespaces" -}}
{{- $ns := list .Release.Namespace -}}
{{- range .Values.webhook.excludeNamespaces -}}
{{- if not (has . $ns) }}{{ $ns = append $ns . }}{{ end -}}
{{- end -}}
{{- toJson $ns -}}
{{- end -}}

{{/* The built-in profiles and rule files: ConfigMap key -> path in the sidecar. */}}
{{- define "asg.builtinPolicyFiles" -}}
dev.toml: policies/dev.toml
production.toml: policies/production.toml
strict.toml: policies/strict.toml
chains.toml: policies/rules/chains.toml
injection.toml: policies/rules/injection.toml
secrets.toml: policies/rules/secrets.toml
tools.toml: policies/rules/tools.toml
{{- end -}}

{{/* Profile names the policy ConfigMap holds. */}}
{{- define "asg.profileNames" -}}
{{- $names := list "dev" "production" "strict" -}}
{{- range $name, $_ := .Values.policies.profiles -}}
{{- if not (has $name $names) }}{{ $names = append $names $name }}{{ end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* Native sidecars: explicit, or from the cluster version. */}}
{{- define "asg.nativeSidecars" -}}
{{- $v := toString .Values.sidecar.nativeSidecars -}}
{{- if eq $v "auto" -}}
{{- semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version -}}
{{- else -}}
{{- eq $v "true" -}}
{{- end -}}
{{- end -}}

{{/* The injector's settings file (proxy/src/kube/settings.rs). */}}
{{- define "asg.settings" -}}
{{- $s := .Values.sidecar -}}
{{- $namespaces := dict -}}
{{- range .Values.injection.namespaces -}}
{{- $entry := dict -}}
{{- if .profile }}{{ $_ := set $entry "profile" .profile }}{{ end -}}
{{- if .mode }}{{ $_ := set $entry "mode" .mode }}{{ end -}}
{{- $_ := set $namespaces .name $entry -}}
{{- end -}}
{{- $items := list -}}
{{- range $key, $path := include "asg.builtinPolicyFiles" . | fromYaml -}}
{{- $items = append $items (dict "key" $key "path" (trimPrefix "policies/" $path)) -}}
{{- end -}}
{{- range $name, $_ := .Values.policies.profiles -}}
{{- if not (has $name (list "dev" "production" "strict")) -}}
{{- $items = append $items (dict "key" (printf "%s.toml" $name) "path" (printf "%s.toml" $name)) -}}
{{- end -}}
{{- end -}}
{{- $ports := list -}}
{{- range $s.redirectPorts }}{{ $ports = append $ports (int64 .) }}{{ end -}}
{{- /* int64: Helm reads numbers as floats, and toYaml writes large ones as 2.6e+08. */ -}}
{{- $settings := dict
  "image" (include "asg.image" .)
  "imagePullPolicy" .Values.image.pullPolicy
  "mode" $s.mode
  "profile" $s.profile
  "profiles" (include "asg.profileNames" . | fromJsonArray)
  "nativeSidecars" (include "asg.nativeSidecars" . | eq "true")
  "namespaces" $namespaces
  "onlyListedNamespaces" (ne .Values.ca.source "secret")
  "uid" (int64 $s.uid)
  "gid" (int64 $s.uid)
  "proxyPort" (int64 $s.proxyPort)
  "transparentPort" (int64 $s.transparentPort)
  "adminPort" (int64 $s.adminPort)
  "redirectPorts" $ports
  "excludeCidrs" $s.excludeCidrs
  "ipv6" $s.ipv6
  "noProxy" $s.noProxy
  "threads" (int64 $s.threads)
  "auditMaxBytes" (int64 $s.auditMaxBytes)
  "logFormat" $s.logFormat
  "resources" $s.resources
  "initResources" $s.initResources
  "caSecret" "asg-ca"
  "policyConfigMap" "asg-policies"
  "policyItems" $items
  "adminSecret" (ternary "asg-admin" "" $s.adminAuth)
  "auditStdout" $s.auditStdout
  "stateUrl" .Values.state.url
  "statePrefix" .Values.state.prefix
  "statePasswordSecret" .Values.state.passwordSecret.name
  "statePasswordKey" .Values.state.passwordSecret.key
-}}
{{- toYaml $settings -}}
{{- end -}}
