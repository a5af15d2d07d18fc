// A provider's clientPolicy applied to an OidcClient spec before anything is sent: each field the
// client asks for must be on the provider's allow-lists. Pure; the messages name the field and
// the value so the tenant can fix the spec without seeing anything else of the provider.
import type { ClientPolicy, OidcClientSpec, RedirectUriPolicy } from '../api/types.generated.js';

export interface PolicyViolation {
  /** Spec path, e.g. spec.redirectUris[1]. */
  field: string;
  value: string;
  message: string;
}

/** RFC 7591 §2 defaults: what a client that leaves the field out is asking for. */
export const RFC7591_DEFAULTS = {
  grantTypes: ['authorization_code'],
  responseTypes: ['code'],
  tokenEndpointAuthMethod: 'client_secret_basic',
} as const;

const DEFAULT_SCHEMES = ['https'];

/** Mistakes in the policy itself (patterns that do not compile). A broken policy refuses every client. */
export function policyProblems(policy: ClientPolicy | undefined): string[] {
  const patterns: unknown = policy?.redirectUris?.allowedPatterns;
  if (!Array.isArray(patterns)) return [];
  return patterns.flatMap((p: unknown, i) => {
    if (typeof p !== 'string') return [];
    try {
      anchored(p);
      return [];
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      return [`clientPolicy.redirectUris.allowedPatterns[${i}] is not a valid regular expression: ${why}`];
    }
  });
}

export function checkClientPolicy(policy: ClientPolicy | undefined, spec: OidcClientSpec): PolicyViolation[] {
  if (!policy) return [];
  const out: PolicyViolation[] = [];
  const allowList = (
    field: string,
    values: readonly string[],
    allowed: string[] | undefined,
    implied = false,
  ) => {
    if (!allowed) return;
    values.forEach((value, i) => {
      if (allowed.includes(value)) return;
      const at = implied ? `${field} (not set, so ${value})` : `${field}[${i}]`;
      out.push({
        field: implied ? field : `${field}[${i}]`,
        value,
        message: `${at}: "${value}" is not allowed (allowed: ${listOrNone(allowed)})`,
      });
    });
  };
  allowList(
    'spec.grantTypes',
    spec.grantTypes ?? RFC7591_DEFAULTS.grantTypes,
    policy.allowedGrantTypes,
    !spec.grantTypes,
  );
  allowList(
    'spec.responseTypes',
    spec.responseTypes ?? RFC7591_DEFAULTS.responseTypes,
    policy.allowedResponseTypes,
    !spec.responseTypes,
  );
  allowList('spec.scopes', spec.scopes ?? [], policy.allowedScopes);
  if (policy.allowedTokenEndpointAuthMethods) {
    const method = spec.tokenEndpointAuthMethod ?? RFC7591_DEFAULTS.tokenEndpointAuthMethod;
    if (!(policy.allowedTokenEndpointAuthMethods as string[]).includes(method)) {
      const at = spec.tokenEndpointAuthMethod
        ? 'spec.tokenEndpointAuthMethod'
        : `spec.tokenEndpointAuthMethod (not set, so ${method})`;
      out.push({
        field: 'spec.tokenEndpointAuthMethod',
        value: method,
        message: `${at}: "${method}" is not allowed (allowed: ${listOrNone(policy.allowedTokenEndpointAuthMethods)})`,
      });
    }
  }
  if (policy.allowedExtraMetadataKeys) {
    const allowed = policy.allowedExtraMetadataKeys;
    for (const key of Object.keys(spec.extraMetadata ?? {})) {
      if (allowed.includes(key)) continue;
      out.push({
        field: `spec.extraMetadata.${key}`,
        value: key,
        message: `spec.extraMetadata: key "${key}" is not allowed (allowed: ${listOrNone(allowed)})`,
      });
    }
  }
  const rules = policy.redirectUris;
  if (rules) {
    for (const field of ['redirectUris', 'postLogoutRedirectUris'] as const) {
      (spec[field] ?? []).forEach((uri, i) => {
        const why = redirectUriProblem(rules, uri);
        if (why)
          out.push({
            field: `spec.${field}[${i}]`,
            value: uri,
            message: `spec.${field}[${i}]: "${uri}" ${why}`,
          });
      });
    }
  }
  return out;
}

/** RFC 3986 characters only: a parser on the provider side cannot read a different host into it. */
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;

/** Why `uri` breaks the rules, or undefined when it is allowed. */
export function redirectUriProblem(rules: RedirectUriPolicy, uri: string): string | undefined {
  if (!URI_CHARS.test(uri)) return 'contains characters outside RFC 3986 (spaces, backslashes, non-ASCII)';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'is not an absolute URI';
  }
  const scheme = url.protocol.replace(/:$/, '');
  const schemes = rules.allowedSchemes ?? DEFAULT_SCHEMES;
  if (!schemes.includes(scheme))
    return `uses scheme ${scheme}, not allowed (allowed: ${listOrNone(schemes)})`;
  if (hasUserInfo(uri)) return 'carries user information (user@host), which is not allowed';
  const hosts = rules.allowedHosts;
  const patterns = rules.allowedPatterns;
  if (!hosts && !patterns) return undefined;
  if (hosts?.some((h) => hostMatches(h, url.hostname))) return undefined;
  if (patterns?.some((p) => safeTest(p, uri))) return undefined;
  const parts = [
    hosts ? `host "${url.hostname}" is not in allowedHosts (${listOrNone(hosts)})` : undefined,
    patterns ? 'it matches none of allowedPatterns' : undefined,
  ].filter(Boolean);
  return `is not allowed: ${parts.join(' and ')}`;
}

/** Exact name, or `*.suffix` for any name strictly below suffix (a.suffix, a.b.suffix; not suffix). */
export function hostMatches(allowed: string, hostname: string): boolean {
  const host = hostname.toLowerCase();
  const rule = allowed.toLowerCase();
  if (!rule.startsWith('*.')) return host === rule;
  const suffix = rule.slice(1); // ".suffix"
  return host.length > suffix.length && host.endsWith(suffix);
}

function hasUserInfo(uri: string): boolean {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(uri);
  return m?.[1]?.includes('@') ?? false;
}

function anchored(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'u');
}

function safeTest(pattern: string, value: string): boolean {
  try {
    return anchored(pattern).test(value);
  } catch {
    return false; // a broken pattern allows nothing (policyProblems reports it)
  }
}

function listOrNone(values: readonly string[]): string {
  return values.length > 0 ? values.join(', ') : 'none';
}
