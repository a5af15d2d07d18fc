// spec.secretTemplate applied to the application Secret: its type, its data (the default keys,
// the template's keys rendered, or both) and the labels and annotations it sets. The operator
// owns the Secret it created, so it may take back what it set earlier; it records which label and
// annotation keys came from the template, so a key removed from the template is removed from the
// Secret while keys others added stay.
import type { V1Secret } from '@kubernetes/client-node';
import { API_GROUP } from '../api/schema.js';
import { renderData, SecretTemplateError, type TemplateValues } from '../api/secret-template.js';
import type { OidcClient } from '../api/types.generated.js';
import type { ProviderEndpoints } from '../registration/types.js';

/** On the application Secret: the label / annotation keys the template set (comma-separated, sorted). */
export const ANNOTATION_TEMPLATE_LABELS = `${API_GROUP}/template-labels`;
export const ANNOTATION_TEMPLATE_ANNOTATIONS = `${API_GROUP}/template-annotations`;
const TRACKING = [ANNOTATION_TEMPLATE_LABELS, ANNOTATION_TEMPLATE_ANNOTATIONS] as const;

export { SecretTemplateError };

/** What the application Secret is rendered from. */
export interface AppSecretInput {
  clientId: string;
  clientSecret?: string;
  endpoints: Pick<
    ProviderEndpoints,
    | 'issuer'
    | 'tokenEndpoint'
    | 'discoveryUrl'
    | 'authorizationEndpoint'
    | 'userinfoEndpoint'
    | 'jwksUri'
    | 'endSessionEndpoint'
  >;
}

export function templateValues(cr: OidcClient, input: AppSecretInput): TemplateValues {
  const e = input.endpoints;
  return {
    clientId: input.clientId,
    clientSecret: input.clientSecret,
    clientName: cr.spec.clientName ?? (cr.metadata.name as string),
    issuer: e.issuer,
    discoveryUrl: e.discoveryUrl,
    tokenEndpoint: e.tokenEndpoint,
    authorizationEndpoint: e.authorizationEndpoint,
    userinfoEndpoint: e.userinfoEndpoint,
    jwksUri: e.jwksUri,
    endSessionEndpoint: e.endSessionEndpoint,
    redirectUris: cr.spec.redirectUris ?? [],
    postLogoutRedirectUris: cr.spec.postLogoutRedirectUris ?? [],
    scopes: cr.spec.scopes ?? [],
  };
}

/** The Secret's data as plain strings; throws SecretTemplateError when a placeholder has no value. */
export function appSecretValues(cr: OidcClient, input: AppSecretInput): Record<string, string | undefined> {
  const tpl = cr.spec.secretTemplate;
  const rendered = tpl?.data ? renderData(tpl.data, templateValues(cr, input)) : {};
  if (tpl?.mergePolicy === 'Replace') return rendered;
  return {
    client_id: input.clientId,
    client_secret: input.clientSecret,
    issuer: input.endpoints.issuer,
    token_endpoint: input.endpoints.tokenEndpoint,
    ...rendered,
  };
}

/**
 * Before a registration: the template renders with the provider's endpoints (a client id and
 * secret stand in for the ones not issued yet), so a placeholder without a value stops it first.
 */
export function checkRenderable(cr: OidcClient, endpoints: AppSecretInput['endpoints']): void {
  const secret = cr.spec.tokenEndpointAuthMethod === 'none' ? undefined : 'client-secret';
  appSecretValues(cr, { clientId: 'client-id', clientSecret: secret, endpoints });
}

export function secretType(cr: OidcClient): string {
  return cr.spec.secretTemplate?.type ?? 'Opaque';
}

const keyList = (m: Record<string, string> | undefined) =>
  Object.keys(m ?? {})
    .sort()
    .join(',');

/** The template's annotations plus the record of which label and annotation keys it set. */
export function templateAnnotations(cr: OidcClient): Record<string, string> {
  const tpl = cr.spec.secretTemplate ?? {};
  const out: Record<string, string> = { ...(tpl.annotations ?? {}) };
  const labels = keyList(tpl.labels);
  const annotations = keyList(tpl.annotations);
  if (labels) out[ANNOTATION_TEMPLATE_LABELS] = labels;
  if (annotations) out[ANNOTATION_TEMPLATE_ANNOTATIONS] = annotations;
  return out;
}

/** The template keys recorded on `secret` match the ones `desired` records (none set = none). */
export function sameTemplateKeys(actual: V1Secret, desired: V1Secret): boolean {
  return TRACKING.every((k) => actual.metadata?.annotations?.[k] === desired.metadata?.annotations?.[k]);
}

/**
 * Labels and annotations for rewriting `current` into `desired`: keys the template set before and
 * no longer sets are removed, the desired ones set, everything else kept.
 */
export function mergedMetadata(
  current: V1Secret,
  desired: V1Secret,
): { labels: Record<string, string>; annotations: Record<string, string> } {
  const had = (k: string) => (current.metadata?.annotations?.[k] ?? '').split(',').filter(Boolean);
  const labels = { ...current.metadata?.labels };
  const annotations = { ...current.metadata?.annotations };
  for (const k of had(ANNOTATION_TEMPLATE_LABELS)) delete labels[k];
  for (const k of had(ANNOTATION_TEMPLATE_ANNOTATIONS)) delete annotations[k];
  for (const k of TRACKING) delete annotations[k];
  return {
    labels: { ...labels, ...desired.metadata?.labels },
    annotations: { ...annotations, ...desired.metadata?.annotations },
  };
}
