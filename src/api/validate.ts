// Offline validation of our resources, compiled with ajv from the same schema objects that generate
// the CRDs (src/api/schema.ts). Used by the `validate` CLI (Git workflow) and by the reconciler for
// InvalidSpec conditions.
//
// What the apiserver does that is emulated here: unknown fields are rejected (kubectl's default
// strict field validation), null values of declared fields are pruned before validation, set lists
// must not repeat items and map lists must not repeat their keys, and every CEL rule
// (x-kubernetes-validations) runs through its offline twin from src/api/rules.ts, reporting the
// rule's own message at its fieldPath, so `validate` and `kubectl apply` say the same thing.
// As on the apiserver, CEL rules do not run when the object has type errors.
// What is NOT emulated: defaulting, and the transition rule `self == oldSelf` (providerRef
// immutable), which needs the stored object and therefore runs only on the server.
//
// Checks that only the operator (and this validator) make, because the apiserver cannot see what
// they need (listed in the README, "Validation at apply time"): an OidcProvider's Secret namespace
// against its own metadata.namespace (CEL reads only metadata.name), clientPolicy patterns as
// ECMAScript regular expressions, management origins parsed as URLs, and secretTemplate label and
// annotation keys and values. Rules that need other objects (provider exists, namespace allowed by
// a ClusterOidcProvider, clientPolicy limits) are checked by the reconciler at run time.
import { Ajv, type ErrorObject, type SchemaValidateFunction, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import { policyProblems } from '../policy/client-policy.js';
import { parseOrigin } from '../registration/origins.js';
import { DNS1123_LABEL_RE, DNS1123_SUBDOMAIN_RE, ORIGIN_RE, offlineMessage, offlineTwin } from './rules.js';
import {
  API_GROUP,
  API_VERSION,
  objectSchema,
  type ResourceDefinition,
  resources,
  TEMPLATE_BASIC_AUTH_MESSAGE,
  TEMPLATE_KEYS_MESSAGE,
  TEMPLATE_REPLACE_MESSAGE,
  TEMPLATE_TYPE_MESSAGE,
} from './schema.js';
import type { Schema } from './schema-builder.js';
import { SecretTemplateError, templatePlaceholders } from './secret-template.js';
import type { ClientPolicy } from './types.generated.js';

export interface ValidationIssue {
  /** JSON pointer into the validated object, e.g. /spec/redirectUris/0; '/' for the object itself. */
  path: string;
  message: string;
}

export interface ResourceValidation {
  kind?: string;
  /** False when the object is not of our API group (nothing was checked; callers usually skip it). */
  checked: boolean;
  issues: ValidationIssue[];
}

export { SERVER_MANAGED_CLIENT_METADATA, STANDARD_CLIENT_METADATA } from './client-metadata.js';

// ---- structural validation with ajv ----------------------------------------------------------------

/**
 * Derives the ajv schema from the API schema: objects with declared properties reject unknown fields
 * (as `kubectl apply` does with its default strict field validation) and set lists reject repeats.
 */
export function toAjvSchema(schema: Schema): Record<string, unknown> {
  const { properties, items, additionalProperties, ...rest } = schema;
  const out: Record<string, unknown> = { ...rest };
  if (properties) {
    out.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, toAjvSchema(v)]));
    if (additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields']) {
      out.additionalProperties = false;
    }
  }
  if (items) out.items = toAjvSchema(items);
  if (additionalProperties !== undefined) {
    out.additionalProperties =
      typeof additionalProperties === 'boolean' ? additionalProperties : toAjvSchema(additionalProperties);
  }
  if (schema['x-kubernetes-list-type'] === 'set') out.uniqueItems = true;
  return out;
}

/** Map lists (x-kubernetes-list-type: map) must not hold two items with the same key values. */
const uniqueMapKeys: SchemaValidateFunction = (keys: string[], data: unknown, _parent, cxt) => {
  if (!Array.isArray(data)) return true;
  const seen = new Map<string, number>();
  const errors: Partial<ErrorObject>[] = [];
  data.forEach((item: unknown, i) => {
    if (!isRecord(item)) return;
    const id = JSON.stringify(keys.map((k) => item[k]));
    const first = seen.get(id);
    if (first === undefined) seen.set(id, i);
    else {
      errors.push({
        keyword: 'x-kubernetes-list-map-keys',
        instancePath: `${cxt?.instancePath ?? ''}/${i}`,
        message: `duplicate of item ${first}: ${keys.join(', ')} must be unique`,
        params: {},
      });
    }
  });
  uniqueMapKeys.errors = errors;
  return errors.length === 0;
};

function makeAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
  // ajv-formats is CommonJS: under nodenext its default import types as the module namespace.
  const addFormats = ajvFormats as unknown as typeof ajvFormats.default;
  addFormats(ajv);
  // Kubernetes extensions and generator hints: annotations for ajv, except list-map-keys.
  for (const keyword of [
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-validations',
    'x-kubernetes-list-type',
    'x-kubernetes-map-type',
    'x-ts-type',
  ]) {
    ajv.addKeyword({ keyword });
  }
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-map-keys',
    type: 'array',
    schemaType: 'array',
    errors: true,
    validate: uniqueMapKeys,
  });
  return ajv;
}

type KindValidators = Map<string, { def: ResourceDefinition; validate: ValidateFunction }>;

let byKind: KindValidators | undefined;
let clientSpec: { schema: Schema; validate: ValidateFunction } | undefined;

/**
 * Whole-object validators of every kind, compiled on first use: only the offline CLI (validate,
 * import) needs them; the CLI's --help and version should not pay for them either.
 */
function kindValidators(): KindValidators {
  if (byKind) return byKind;
  const ajv = makeAjv();
  byKind = new Map();
  for (const def of resources) {
    byKind.set(def.kind, { def, validate: ajv.compile(toAjvSchema(objectSchema(def))) });
  }
  return byKind;
}

/** The OidcClient spec's validator alone: all the operator compiles (each compiled schema is heap). */
function clientSpecValidator(): { schema: Schema; validate: ValidateFunction } {
  if (clientSpec) return clientSpec;
  const def = resources.find((r) => r.kind === 'OidcClient');
  if (!def) throw new Error('schema.ts defines no OidcClient');
  clientSpec = { schema: def.spec, validate: makeAjv().compile(toAjvSchema(def.spec)) };
  return clientSpec;
}

const escapePointer = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

function issueFromAjv(e: ErrorObject, prefix: string): ValidationIssue {
  const at = (suffix = ''): string => `${prefix}${e.instancePath}${suffix}` || '/';
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: at(`/${escapePointer(String(params.missingProperty))}`), message: 'is required' };
    case 'additionalProperties':
      return { path: at(`/${escapePointer(String(params.additionalProperty))}`), message: 'unknown field' };
    case 'enum':
      return {
        path: at(),
        message: `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`,
      };
    case 'uniqueItems': {
      const [first, second] = [Number(params.j), Number(params.i)].sort((a, b) => a - b);
      return { path: at(`/${second}`), message: `duplicate of item ${first} (the list is a set)` };
    }
    default:
      return { path: at(), message: e.message ?? `fails ${e.keyword}` };
  }
}

function runAjv(validate: ValidateFunction, data: unknown, prefix: string): ValidationIssue[] {
  if (validate(data)) return [];
  return (validate.errors ?? []).map((e) => issueFromAjv(e, prefix));
}

/**
 * The apiserver drops null values of declared (non-nullable) fields before validating, so
 * `clientName:` with nothing after it is accepted; mirror that instead of reporting "must be string".
 */
export function pruneNulls(value: unknown, schema: Schema): unknown {
  if (Array.isArray(value)) {
    const items = schema.items;
    return items ? value.map((v) => pruneNulls(v, items)) : value;
  }
  if (!isRecord(value) || !schema.properties) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const prop = schema.properties[key];
    if (prop && v === null) continue;
    out[key] = prop ? pruneNulls(v, prop) : v;
  }
  return out;
}

// ---- CEL rules, through their offline twins -------------------------------------------------------

/** ".spec.secretName" → "/spec/secretName" (our fieldPaths are plain dotted names). */
const pointerOf = (fieldPath: string | undefined): string =>
  fieldPath
    ? fieldPath
        .split('.')
        .slice(1)
        .map(escapePointer)
        .map((k) => `/${k}`)
        .join('')
    : '';

/** Runs every x-kubernetes-validations rule on the nodes present in `value`, like the apiserver. */
function celIssues(value: unknown, schema: Schema, path: string, out: ValidationIssue[]): void {
  if (value === undefined) return;
  for (const v of schema['x-kubernetes-validations'] ?? []) {
    const twin = offlineTwin(v.rule);
    if (twin === undefined) throw new Error(`CEL rule without an offline twin (src/api/rules.ts): ${v.rule}`);
    if (twin === 'server-only' || twin === 'semantic' || twin(value)) continue;
    out.push({ path: `${path}${pointerOf(v.fieldPath)}` || '/', message: offlineMessage(v, value) });
  }
  const { items, properties, additionalProperties } = schema;
  if (Array.isArray(value)) {
    if (!items) return;
    value.forEach((item, i) => {
      celIssues(item, items, `${path}/${i}`, out);
    });
    return;
  }
  if (!isRecord(value)) return;
  const extra = typeof additionalProperties === 'object' ? additionalProperties : undefined;
  for (const [key, child] of Object.entries(value)) {
    const prop = properties?.[key] ?? extra;
    if (prop) celIssues(child, prop, `${path}/${escapePointer(key)}`, out);
  }
}

/** The apiserver skips CEL rules while the object has type errors (they rely on the types). */
const hasTypeError = (validate: ValidateFunction): boolean =>
  (validate.errors ?? []).some((e) => e.keyword === 'type');

// ---- checks the apiserver cannot make --------------------------------------------------------------

const DNS1123_LABEL = new RegExp(DNS1123_LABEL_RE);
const DNS1123_SUBDOMAIN = new RegExp(DNS1123_SUBDOMAIN_RE);

export const isDns1123Subdomain = (s: string): boolean => s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
export const isDns1123Label = (s: string): boolean => s.length <= 63 && DNS1123_LABEL.test(s);

const SUBDOMAIN_MESSAGE =
  'must be a DNS-1123 subdomain: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters';
const LABEL_MESSAGE =
  'must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function checkName(issues: ValidationIssue[], path: string, value: unknown, label = false): void {
  if (typeof value !== 'string') return; // wrong types are reported by the structural check
  if (label ? !isDns1123Label(value) : !isDns1123Subdomain(value)) {
    issues.push({ path, message: label ? LABEL_MESSAGE : SUBDOMAIN_MESSAGE });
  }
}

export interface ClientContext {
  /** metadata.name of the OidcClient: lets the check resolve the default Secret names. */
  name?: string;
}

function clientSemantics(spec: Record<string, unknown>): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (isRecord(spec.secretTemplate)) checkSecretTemplate(issues, spec.secretTemplate, spec);
  return issues;
}

/** Keys a Secret's data may have (the apiserver's IsConfigMapKey). */
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes' rule for label and annotation keys: [prefix/]name, prefix a DNS subdomain. */
function keyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return 'the prefix before "/" must be a DNS subdomain (lower case, at most 253 characters)';
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return 'the name must be 1-63 characters of [A-Za-z0-9-_.], starting and ending with a letter or digit';
  }
  if (prefix === API_GROUP || prefix?.endsWith(`.${API_GROUP}`) || key === 'app.kubernetes.io/managed-by') {
    return 'is reserved for the operator';
  }
  return undefined;
}

/**
 * What the apiserver (or the Secret it would be written to) would refuse, and templates that
 * cannot render: caught before anything is registered. Messages start like the CRD's CEL rules'.
 */
function checkSecretTemplate(
  issues: ValidationIssue[],
  tpl: Record<string, unknown>,
  spec: Record<string, unknown>,
): void {
  const data = isRecord(tpl.data) ? tpl.data : undefined;
  for (const [key, value] of Object.entries(data ?? {})) {
    const path = `/spec/secretTemplate/data/${escapePointer(key)}`;
    if (key.length > 253 || !SECRET_KEY.test(key)) issues.push({ path, message: TEMPLATE_KEYS_MESSAGE });
    if (typeof value !== 'string') continue;
    try {
      const required = templatePlaceholders(value).filter((p) => !p.optional);
      if (spec.tokenEndpointAuthMethod === 'none' && required.some((p) => p.name === 'clientSecret'))
        issues.push({
          path,
          message: 'invalid template: .clientSecret has no value with tokenEndpointAuthMethod none',
        });
    } catch (error) {
      if (!(error instanceof SecretTemplateError)) throw error;
      issues.push({ path, message: `invalid template: ${error.message}` });
    }
  }
  const type = asString(tpl.type);
  if (
    type !== undefined &&
    !['Opaque', 'kubernetes.io/basic-auth'].includes(type) &&
    type.includes('kubernetes.io/')
  )
    issues.push({ path: '/spec/secretTemplate/type', message: TEMPLATE_TYPE_MESSAGE });
  if (type === 'kubernetes.io/basic-auth' && !(data && ('username' in data || 'password' in data)))
    issues.push({ path: '/spec/secretTemplate/type', message: TEMPLATE_BASIC_AUTH_MESSAGE });
  if (tpl.mergePolicy === 'Replace' && Object.keys(data ?? {}).length === 0)
    issues.push({ path: '/spec/secretTemplate/mergePolicy', message: TEMPLATE_REPLACE_MESSAGE });
  for (const kind of ['labels', 'annotations'] as const) {
    const map = tpl[kind];
    if (!isRecord(map)) continue;
    for (const [key, value] of Object.entries(map)) {
      const path = `/spec/secretTemplate/${kind}/${escapePointer(key)}`;
      const problem = keyProblem(key);
      if (problem) issues.push({ path, message: `invalid key: ${problem}` });
      if (kind === 'labels' && typeof value === 'string' && value !== '') {
        if (value.length > 63 || !QUALIFIED_NAME.test(value)) {
          issues.push({
            path,
            message:
              'invalid label value: at most 63 characters of [A-Za-z0-9-_.], starting and ending with a letter or digit',
          });
        }
      }
    }
  }
}

function providerSemantics(
  spec: Record<string, unknown>,
  clusterScoped: boolean,
  namespace?: string,
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  checkManagementOrigins(issues, spec);
  // CEL reads only metadata.name, so "the provider's own namespace" is checked here and at run time.
  for (const field of ['initialAccessTokenSecretRef', 'caSecretRef'] as const) {
    const ref = spec[field];
    if (clusterScoped || !isRecord(ref) || !namespace || !ref.namespace) continue;
    if (ref.namespace !== namespace) {
      issues.push({
        path: `/spec/${field}/namespace`,
        message: "must be empty or the OidcProvider's own namespace",
      });
    }
  }
  if (isRecord(spec.clientPolicy)) {
    for (const problem of policyProblems(spec.clientPolicy as ClientPolicy)) {
      issues.push({ path: '/spec/clientPolicy', message: problem });
    }
  }
  return issues;
}

const ORIGIN = new RegExp(ORIGIN_RE);

/** Origins that pass the CRD's pattern but are still no URL (e.g. a bad IPv6 literal). */
function checkManagementOrigins(issues: ValidationIssue[], spec: Record<string, unknown>): void {
  const origins = spec.managementOrigins;
  if (!Array.isArray(origins)) return;
  origins.forEach((value, i) => {
    if (typeof value !== 'string' || !ORIGIN.test(value)) return;
    try {
      parseOrigin(value);
    } catch (error) {
      const path = `/spec/managementOrigins/${i}`;
      issues.push({ path, message: error instanceof Error ? error.message : String(error) });
    }
  });
}

function metadataSemantics(metadata: unknown, clusterScoped: boolean): ValidationIssue[] {
  if (!isRecord(metadata)) return [];
  const issues: ValidationIssue[] = [];
  checkName(issues, '/metadata/name', metadata.name);
  if (typeof metadata.name !== 'string' && metadata.name !== undefined) {
    issues.push({ path: '/metadata/name', message: 'must be string' });
  }
  if (!clusterScoped) checkName(issues, '/metadata/namespace', metadata.namespace, true);
  return issues;
}

// ---- public API ----------------------------------------------------------------------------------

/**
 * Structural and semantic checks of an OidcClient spec. Paths start with /spec so runtime conditions
 * and the CLI name fields the same way.
 */
export function validateOidcClientSpec(spec: unknown, ctx: ClientContext = {}): ValidationIssue[] {
  const { schema, validate } = clientSpecValidator();
  const pruned = pruneNulls(spec, schema);
  const issues = runAjv(validate, pruned, '/spec');
  if (!hasTypeError(validate)) {
    // The object-level rules read metadata.name: give them the name the caller knows.
    const object = { metadata: ctx.name === undefined ? {} : { name: ctx.name }, spec: pruned };
    celIssues(object, objectSchema(clientDefinition()), '', issues);
  }
  if (isRecord(pruned)) issues.push(...clientSemantics(pruned));
  return issues;
}

/**
 * The CEL rules and the operator-only checks of an OidcProvider/ClusterOidcProvider spec (structure
 * is the apiserver's job at run time; the CEL rules guard objects stored before a rule existed).
 */
export function validateProviderSpec(
  spec: unknown,
  opts: { clusterScoped: boolean; namespace?: string },
): ValidationIssue[] {
  if (!isRecord(spec)) return [];
  const kind = opts.clusterScoped ? 'ClusterOidcProvider' : 'OidcProvider';
  const def = resources.find((r) => r.kind === kind);
  const issues: ValidationIssue[] = [];
  if (def) celIssues(spec, def.spec, '/spec', issues);
  issues.push(...providerSemantics(spec, opts.clusterScoped, opts.namespace));
  return issues;
}

function clientDefinition(): ResourceDefinition {
  const def = resources.find((r) => r.kind === 'OidcClient');
  if (!def) throw new Error('schema.ts defines no OidcClient');
  return def;
}

/** True when apiVersion names our API group (any version). */
export function isOwnApiVersion(apiVersion: unknown): boolean {
  return typeof apiVersion === 'string' && apiVersion.split('/')[0] === API_GROUP && apiVersion.includes('/');
}

/**
 * Validates a whole object of our API group. Objects of other groups come back with checked=false and
 * no issues; an unknown version or kind of our group is an issue.
 */
export function validateResource(obj: unknown): ResourceValidation {
  if (!isRecord(obj)) return { checked: true, issues: [{ path: '/', message: 'must be an object' }] };
  const kind = asString(obj.kind);
  const entry = kind === undefined ? undefined : kindValidators().get(kind);
  if (!isOwnApiVersion(obj.apiVersion)) {
    // A kind of ours without apiVersion is a mistake in the manifest, not someone else's object.
    if (obj.apiVersion === undefined && entry) {
      return {
        kind,
        checked: true,
        issues: [{ path: '/apiVersion', message: `is required (${API_GROUP}/${API_VERSION})` }],
      };
    }
    return { kind, checked: false, issues: [] };
  }
  if (obj.apiVersion !== `${API_GROUP}/${API_VERSION}`) {
    return {
      kind,
      checked: true,
      issues: [{ path: '/apiVersion', message: `unsupported version: this release serves ${API_VERSION}` }],
    };
  }
  if (!entry) {
    const known = [...kindValidators().keys()].join(', ');
    return {
      kind,
      checked: true,
      issues: [
        { path: '/kind', message: kind === undefined ? 'is required' : `unknown kind: one of ${known}` },
      ],
    };
  }
  const { def, validate } = entry;
  const schema = objectSchema(def);
  const pruned = pruneNulls(obj, schema) as Record<string, unknown>;
  const issues = runAjv(validate, pruned, '');
  if (!hasTypeError(validate)) celIssues(pruned, schema, '', issues);
  const clusterScoped = def.scope === 'Cluster';
  issues.push(...metadataSemantics(pruned.metadata, clusterScoped));
  const spec = pruned.spec;
  if (isRecord(spec)) {
    const meta = isRecord(pruned.metadata) ? pruned.metadata : {};
    if (def.kind === 'OidcClient') issues.push(...clientSemantics(spec));
    else issues.push(...providerSemantics(spec, clusterScoped, asString(meta.namespace)));
  }
  return { kind, checked: true, issues };
}
