{{/*
Chart name, overridable with nameOverride. 63 characters: label values and DNS-1123 labels.
*/}}
{{- define "oidc-client-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's namespaced objects: "<release>-<chart>", or just the release name when it
already contains the chart name.
*/}}
{{- define "oidc-client-operator.fullname" -}}
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
Name of objects that do not live in the release namespace (ClusterRoles, ClusterRoleBindings, and
Roles in watched namespaces). The release namespace is part of it, so releases of the same name in
different namespaces do not fight over one object. RBAC names may be up to 253 characters.
*/}}
{{- define "oidc-client-operator.globalName" -}}
{{- printf "%s-%s" (include "oidc-client-operator.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "oidc-client-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: immutable on a Deployment, so only name and instance.
*/}}
{{- define "oidc-client-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oidc-client-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "oidc-client-operator.labels" -}}
helm.sh/chart: {{ include "oidc-client-operator.chart" . }}
{{ include "oidc-client-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: oidc-client-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "oidc-client-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "oidc-client-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "oidc-client-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Namespaces the operator watches: the listed ones in "namespaces" scope (which must not be empty
there: an empty --namespaces would mean "all namespaces" without the RBAC for it), none otherwise.
*/}}
{{- define "oidc-client-operator.watchNamespaces" -}}
{{- if eq .Values.rbac.scope "namespaces" }}
{{- if not .Values.rbac.namespaces }}
{{- fail "rbac.namespaces must list at least one namespace when rbac.scope is \"namespaces\"" }}
{{- end }}
{{- join "," (uniq .Values.rbac.namespaces) }}
{{- end }}
{{- end }}

{{/*
Rules for the namespaced resources: granted cluster-wide (ClusterRole) or per watched namespace (Role).
*/}}
{{- define "oidc-client-operator.namespacedRules" -}}
- apiGroups: ["oidc.dcr-operator.dev"]
  resources: ["oidcclients"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["oidc.dcr-operator.dev"]
  resources: ["oidcclients/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["oidc.dcr-operator.dev"]
  resources: ["oidcclients/finalizers"]
  verbs: ["update"]
- apiGroups: ["oidc.dcr-operator.dev"]
  resources: ["oidcproviders"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["oidc.dcr-operator.dev"]
  resources: ["oidcproviders/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Tells namespace deletion (keep the registration token for the finalizer) from a user deleting
# the management Secret (restore it). A Role can grant this for its own namespace.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- end }}

{{/*
Rules for the cluster-scoped ClusterOidcProvider: always in a ClusterRole.
*/}}
{{- define "oidc-client-operator.clusterRules" -}}
- apiGroups: ["oidc.dcr-operator.dev"]
  resources: ["clusteroidcproviders"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["oidc.dcr-operator.dev"]
  resources: ["clusteroidcproviders/status"]
  verbs: ["get", "update", "patch"]
# Namespace labels decide which namespaces may use a ClusterOidcProvider (spec.conditions
# namespaceSelector); the watch lets a label change take effect at once.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- if eq .Values.metrics.auth "kubernetes" }}
# --metrics-auth=kubernetes: who is this Bearer token, and may it get /metrics?
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end }}
{{- end }}

{{- define "oidc-client-operator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "oidc-client-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}
