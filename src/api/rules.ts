// The CEL rules (x-kubernetes-validations) of the API, each written once with its offline twin.
// schema.ts attaches them to the schema, so the CRDs carry the CEL text and the message; the offline
// validator (validate.ts) walks the same schema and runs each rule's twin, so `validate` and
// `kubectl apply` print the same message at the same field. A twin must decide exactly what the
// CEL expression decides: the e2e test (test/e2e/cli.test.ts) applies a table of bad objects to the
// real apiserver and runs `validate` on the same files.
//
// Regular expressions are written once and used on both sides: keep them to the syntax RE2 (CEL's
// matches()) and ECMAScript agree on: ASCII classes, no lookaround, no backreferences, no \s or \d.

import { DEFAULT_OVERLAP_MS, DURATION_PATTERN } from './duration.js';

export type CelReason =
  | 'FieldValueInvalid'
  | 'FieldValueForbidden'
  | 'FieldValueRequired'
  | 'FieldValueDuplicate';

/** One x-kubernetes-validations entry as it appears in the CRD. */
export interface CelValidation {
  rule: string;
  message: string;
  /** A CEL expression for the message (the apiserver falls back to `message` if it fails). */
  messageExpression?: string;
  /** Where the apiserver reports the failure, relative to the node that holds the rule (".a.b"). */
  fieldPath?: string;
  reason?: CelReason;
}

/** What the offline twin sees: the node's value after null pruning, as CEL's `self`. */
export type OfflineCheck = (self: unknown) => boolean;

/**
 * 'server-only': a transition rule, which needs the stored object (oldSelf) and cannot run offline.
 * 'semantic': validate.ts's own checks report this rule, with details CEL cannot give (the Secret
 * template parser's exact error), at the field concerned.
 */
export type Twin = OfflineCheck | 'server-only' | 'semantic';

const twins = new Map<string, Twin>();
const messageTwins = new Map<string, (self: unknown) => string>();

/** A messageExpression and its offline twin, which must build the same text. */
export interface MessageExpression {
  cel: string;
  twin: (self: unknown) => string;
}

/** Declares a CEL rule and its offline twin (true = valid). */
export function cel(
  rule: string,
  message: string,
  twin: Twin,
  opts: { fieldPath?: string; reason?: CelReason; messageExpression?: MessageExpression } = {},
): CelValidation {
  const { messageExpression, ...rest } = opts;
  const known = twins.get(rule);
  if (known === undefined) twins.set(rule, twin);
  if (!messageExpression) return { rule, message, ...rest };
  messageTwins.set(rule, messageExpression.twin);
  return { rule, message, messageExpression: messageExpression.cel, ...rest };
}

/** The offline twin of a CEL rule; undefined when the rule was not declared through cel(). */
export const offlineTwin = (rule: string): Twin | undefined => twins.get(rule);

/** The message the apiserver prints for `v` failing on `self`: its messageExpression's, if any. */
export const offlineMessage = (v: CelValidation, self: unknown): string =>
  messageTwins.get(v.rule)?.(self) ?? v.message;

/** A CEL string literal holding `text` (regular expressions keep their backslashes). */
export const celString = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

// ---- helpers for twins ---------------------------------------------------------------------------

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/** CEL's has(obj.field): the field is present (whatever its value). */
const has = (obj: unknown, field: string): boolean => isRecord(obj) && obj[field] !== undefined;
const get = (obj: unknown, field: string): unknown => (isRecord(obj) ? obj[field] : undefined);

/** A rule `self.matches(re)` on a string node. */
function matches(regex: string, message: string): CelValidation {
  const re = new RegExp(regex);
  return cel(
    `self.matches(${celString(regex)})`,
    message,
    (self) => typeof self !== 'string' || re.test(self),
  );
}

// ---- names ---------------------------------------------------------------------------------------

export const DNS1123_SUBDOMAIN_RE = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const DNS1123_LABEL_RE = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/** Object names (Secrets, providers). maxLength 253 sits next to it in the schema. */
export const DNS1123_SUBDOMAIN = matches(
  DNS1123_SUBDOMAIN_RE,
  'must be a DNS-1123 subdomain: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters',
);

const labelRe = new RegExp(DNS1123_LABEL_RE);
/** Namespace names; empty means "the object's own namespace" where it is allowed. */
export const NAMESPACE_OR_EMPTY = cel(
  `self == '' || self.matches(${celString(DNS1123_LABEL_RE)})`,
  'must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
  (self) => typeof self !== 'string' || self === '' || labelRe.test(self),
);

// ---- URLs ----------------------------------------------------------------------------------------

/**
 * An absolute URI (RFC 3986 scheme ":" rest) of printable ASCII without spaces; http(s) ones need an
 * authority. Private-use schemes of native apps (com.example.app:/cb, RFC 8252) are absolute URIs
 * too. User information is left to a provider's clientPolicy (which refuses it), as RFC 3986 allows it.
 */
export const ABSOLUTE_URI_RE = '^[A-Za-z][-A-Za-z0-9+.]*:[!-~]+$';
const HTTP_SCHEME_RE = '^[Hh][Tt][Tt][Pp][Ss]?:';
const HTTP_WITH_HOST_RE = '^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+([/?#][!-~]*)?$';

const absRe = new RegExp(ABSOLUTE_URI_RE);
const httpSchemeRe = new RegExp(HTTP_SCHEME_RE);
const httpWithHostRe = new RegExp(HTTP_WITH_HOST_RE);
const isAbsoluteUri = (s: string): boolean =>
  absRe.test(s) && (!httpSchemeRe.test(s) || httpWithHostRe.test(s));

export const ABSOLUTE_URI = cel(
  `self.matches(${celString(ABSOLUTE_URI_RE)}) && (!self.matches(${celString(HTTP_SCHEME_RE)}) || self.matches(${celString(HTTP_WITH_HOST_RE)}))`,
  'must be an absolute URI (scheme:rest, printable ASCII without spaces; http and https need a host)',
  (self) => typeof self !== 'string' || isAbsoluteUri(self),
);

/** RFC 6749 §3.1.2: a redirection endpoint URI must not include a fragment. */
export const NO_FRAGMENT = cel("!self.contains('#')", 'must not contain a fragment (#)', (self) => {
  return typeof self !== 'string' || !self.includes('#');
});

export const HTTP_URL_RE = '^https?://[^/?#@ ]+([/?#][!-~]*)?$';
/** Provider endpoints: lowercase http or https, a host, printable ASCII. */
export const HTTP_URL = matches(
  HTTP_URL_RE,
  'must be an http or https URL with a host: http(s)://host[:port][/path], printable ASCII without spaces',
);

export const ORIGIN_RE = '^https?://[^/?#@ ]+/?$';
export const ORIGIN = matches(
  ORIGIN_RE,
  'must be an origin only: scheme://host[:port], no path, query or user',
);

/** Management origins next to an https registration endpoint (or issuer) must be https too. */
export const HTTPS_ORIGINS = cel(
  "!has(self.managementOrigins) || !(has(self.registrationEndpoint) ? self.registrationEndpoint : self.issuerUrl).startsWith('https:') || self.managementOrigins.all(o, o.startsWith('https:'))",
  'http origins are refused: the provider uses https, and the registration access token must not travel in clear',
  (self) => {
    const origins = get(self, 'managementOrigins');
    if (!Array.isArray(origins)) return true;
    const endpoint = has(self, 'registrationEndpoint')
      ? get(self, 'registrationEndpoint')
      : get(self, 'issuerUrl');
    if (typeof endpoint !== 'string' || !endpoint.startsWith('https:')) return true;
    return origins.every((o) => typeof o !== 'string' || o.startsWith('https:'));
  },
  { fieldPath: '.managementOrigins' },
);

// ---- OidcClient ----------------------------------------------------------------------------------

/** Default Secret names append -oidc-client (12) and -oidc-registration (18) to a name of at most 253. */
export const SECRET_NAME_FITS = cel(
  'has(self.spec.secretName) || size(self.metadata.name) <= 241',
  'metadata.name is longer than 241 characters, so the default application Secret name <name>-oidc-client would exceed 253: set spec.secretName',
  (self) =>
    has(get(self, 'spec'), 'secretName') || (str(get(get(self, 'metadata'), 'name'))?.length ?? 0) <= 241,
  { fieldPath: '.spec.secretName', reason: 'FieldValueRequired' },
);
export const MANAGEMENT_SECRET_NAME_FITS = cel(
  'has(self.spec.managementSecretName) || size(self.metadata.name) <= 235',
  'metadata.name is longer than 235 characters, so the default management Secret name <name>-oidc-registration would exceed 253: set spec.managementSecretName',
  (self) =>
    has(get(self, 'spec'), 'managementSecretName') ||
    (str(get(get(self, 'metadata'), 'name'))?.length ?? 0) <= 235,
  { fieldPath: '.spec.managementSecretName', reason: 'FieldValueRequired' },
);

const DISTINCT_SECRETS_MESSAGE = 'the application Secret and the management Secret must have different names';
/** Effective names (spec or default) of both Secrets; undefined parts when the object lacks them. */
function secretNames(self: unknown): { app?: string; management?: string; explicitManagement: boolean } {
  const spec = get(self, 'spec');
  const name = str(get(get(self, 'metadata'), 'name'));
  const app = has(spec, 'secretName') ? str(get(spec, 'secretName')) : name && `${name}-oidc-client`;
  const explicitManagement = has(spec, 'managementSecretName');
  const management = explicitManagement
    ? str(get(spec, 'managementSecretName'))
    : name && `${name}-oidc-registration`;
  return { app, management, explicitManagement };
}
/** Both Secrets are written with different keys and readers: one name would clobber the other. */
export const DISTINCT_SECRETS_EXPLICIT = cel(
  "!has(self.spec.managementSecretName) || self.spec.managementSecretName != (has(self.spec.secretName) ? self.spec.secretName : self.metadata.name + '-oidc-client')",
  DISTINCT_SECRETS_MESSAGE,
  (self) => {
    const n = secretNames(self);
    return !n.explicitManagement || n.app === undefined || n.app !== n.management;
  },
  { fieldPath: '.spec.managementSecretName' },
);
export const DISTINCT_SECRETS_DEFAULT = cel(
  "has(self.spec.managementSecretName) || !has(self.spec.secretName) || self.spec.secretName != self.metadata.name + '-oidc-registration'",
  DISTINCT_SECRETS_MESSAGE,
  (self) => {
    const n = secretNames(self);
    return n.explicitManagement || n.management === undefined || n.app !== n.management;
  },
  { fieldPath: '.spec.secretName' },
);

// ---- durations ----------------------------------------------------------------------------------

/**
 * How the tokens of a duration string become seconds: the token pattern (a count and its unit) and
 * per unit suffix, checked in order, whether its count is multiplied or divided by the factor.
 */
export interface DurationUnits {
  token: string;
  units: readonly (readonly [suffix: string, op: '*' | '/', factor: number])[];
}

/**
 * CEL: the seconds of the duration string `x`, summed as doubles. Not `duration()`: it cannot read
 * days, and a count the pattern allows (9999999h, 30 digits) overflows Go's duration, so the
 * apiserver would answer with a type conversion error instead of the rule's message.
 */
export function celSecondsOf(x: string, d: DurationUnits): string {
  let perToken = '0.0';
  for (const [suffix, op, factor] of [...d.units].reverse()) {
    const count = `double(t.substring(0, size(t) - ${suffix.length}))`;
    perToken = `t.endsWith('${suffix}') ? ${count} ${op} ${factor.toFixed(1)} : ${perToken}`;
  }
  return `${x}.findAll(${celString(d.token)}).map(t, ${perToken}).sum()`;
}

/** celSecondsOf's twin: the same doubles (decimal parsing is correctly rounded on both sides), summed in the same order. */
export function secondsOf(text: string, d: DurationUnits): number {
  let sum = 0;
  for (const t of text.match(new RegExp(d.token, 'g')) ?? []) {
    const unit = d.units.find(([suffix]) => t.endsWith(suffix));
    if (!unit) continue;
    const [suffix, op, factor] = unit;
    const count = Number(t.slice(0, -suffix.length));
    sum += op === '*' ? count * factor : count / factor;
  }
  return sum;
}

/** spec.rotation durations (DURATION_PATTERN): whole counts of days, hours, minutes, seconds. */
const ROTATION_UNITS: DurationUnits = {
  token: '[0-9]+[dhms]',
  units: [
    ['d', '*', 86_400],
    ['h', '*', 3_600],
    ['m', '*', 60],
    ['s', '*', 1],
  ],
};
const celSeconds = (x: string): string => celSecondsOf(x, ROTATION_UNITS);
const seconds = (text: string): number => secondsOf(text, ROTATION_UNITS);

const durationRe = new RegExp(DURATION_PATTERN);
const DEFAULT_OVERLAP_SECONDS = DEFAULT_OVERLAP_MS / 1000;

/**
 * On spec.rotation: a schedule not longer than the overlap would keep two clients live all the
 * time. Values that fail the pattern are left to it (one error per mistake).
 */
export const ROTATION_LONGER_THAN_OVERLAP = cel(
  `!has(self.every) || !self.every.matches(${celString(DURATION_PATTERN)}) || (has(self.overlap) && !self.overlap.matches(${celString(DURATION_PATTERN)})) || ${celSeconds('self.every')} > (has(self.overlap) ? ${celSeconds('self.overlap')} : ${DEFAULT_OVERLAP_SECONDS.toFixed(1)})`,
  'must be longer than the overlap',
  (self) => {
    const every = get(self, 'every');
    const overlap = get(self, 'overlap');
    if (typeof every !== 'string' || !durationRe.test(every)) return true;
    if (overlap !== undefined && (typeof overlap !== 'string' || !durationRe.test(overlap))) return true;
    return seconds(every) > (typeof overlap === 'string' ? seconds(overlap) : DEFAULT_OVERLAP_SECONDS);
  },
  {
    fieldPath: '.every',
    messageExpression: {
      cel: "'must be longer than the overlap (' + (has(self.overlap) ? self.overlap : '10m, the default') + ')'",
      twin: (self) => {
        const overlap = get(self, 'overlap');
        return `must be longer than the overlap (${typeof overlap === 'string' ? overlap : '10m, the default'})`;
      },
    },
  },
);

/**
 * On extraMetadata: `key` names a field the spec or the provider owns. The rule sits on the map, not
 * on the key, so the apiserver's error does not echo the value (it may be a secret).
 */
export const forbiddenKey = (key: string, message: string): CelValidation =>
  cel(`!has(self.${key})`, message, (self) => !has(self, key), { fieldPath: `.${key}` });

export const PROVIDER_REF_IMMUTABLE = cel(
  'self == oldSelf',
  'providerRef is immutable: create a new OidcClient to move to another provider',
  'server-only',
);

// ---- providers -----------------------------------------------------------------------------------

/** On a Secret reference of a ClusterOidcProvider: it has no namespace of its own to default to. */
export const CLUSTER_REF_NAMESPACE = cel(
  "has(self.namespace) && self.namespace != ''",
  'is required for a ClusterOidcProvider',
  (self) => {
    const ns = get(self, 'namespace');
    return ns !== undefined && ns !== '';
  },
  { fieldPath: '.namespace', reason: 'FieldValueRequired' },
);

export const LABEL_REQUIREMENT = cel(
  "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
  'In and NotIn need at least one value; Exists and DoesNotExist take no values',
  (self) => {
    const values = get(self, 'values');
    const n = Array.isArray(values) ? values.length : 0;
    const op = get(self, 'operator');
    return op === 'In' || op === 'NotIn' ? values !== undefined && n > 0 : values === undefined || n === 0;
  },
);

export const CONDITION_NOT_EMPTY = cel(
  'has(self.namespaces) || has(self.namespaceSelector)',
  'a condition needs namespaces or a namespaceSelector',
  (self) => has(self, 'namespaces') || has(self, 'namespaceSelector'),
);
