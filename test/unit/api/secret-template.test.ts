import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TEMPLATE_VALUES_MESSAGE } from '../../../src/api/schema.js';
import {
  LIST_NAMES,
  parseTemplate,
  renderData,
  renderTemplate,
  SCALAR_NAMES,
  SecretTemplateError,
  TEMPLATE_VALUE_PATTERN,
  type TemplateValues,
} from '../../../src/api/secret-template.js';
import { validateOidcClientSpec } from '../../../src/api/validate.js';

const values: TemplateValues = {
  clientId: 'c-1',
  clientSecret: 's3cret',
  clientName: 'web',
  issuer: 'https://iam.example.org/',
  tokenEndpoint: 'https://iam.example.org/token',
  redirectUris: ['https://a.example.org/cb', 'https://b.example.org/cb'],
  postLogoutRedirectUris: [],
  scopes: ['openid', 'email'],
};

const parses = (s: string) => {
  try {
    parseTemplate(s);
    return true;
  } catch (error) {
    if (error instanceof SecretTemplateError) return false;
    throw error;
  }
};
const pattern = new RegExp(TEMPLATE_VALUE_PATTERN);

describe('secret templates: rendering', () => {
  it.each([
    ['{{ .clientId }}', 'c-1'],
    ['{{.clientId}}', 'c-1'],
    ['id={{ .clientId }}; secret={{ .clientSecret }}', 'id=c-1; secret=s3cret'],
    ['{{ .scopes | join " " }}', 'openid email'],
    ['{{ .redirectUris | join "," }}', 'https://a.example.org/cb,https://b.example.org/cb'],
    ['{{ .redirectUris | first }}', 'https://a.example.org/cb'],
    ['{{ .clientSecret | b64enc }}', Buffer.from('s3cret').toString('base64')],
    ['{{ .userinfoEndpoint | default "none" }}', 'none'],
    ['{{ .postLogoutRedirectUris | first | default "-" }}', '-'],
    ['{{ .postLogoutRedirectUris | join "," }}', ''],
    ['no placeholders, {single} braces and }} are text', 'no placeholders, {single} braces and }} are text'],
    ['', ''],
  ])('%s → %s', (source, want) => {
    expect(renderTemplate(source, values)).toBe(want);
  });

  it.each([
    ['{{ .nope }}', /unknown name \.nope/],
    ['{{ clientId }}', /must start with \.name/],
    ['{{ .clientId', /unclosed/],
    ['{{ .scopes }}', /\.scopes is a list: add \| join/],
    ['{{ .scopes | b64enc | join "," }}', /is a list: use \| join/],
    ['{{ .clientId | join "," }}', /join applies to a list/],
    ['{{ .clientId | upper }}', /unknown pipe "\| upper"/],
    ['{{ .clientId | join "}}" }}', /unterminated string/],
    ['{{ .clientId | default x }}', /unknown pipe/],
    ['{{ .constructor }}', /unknown name/],
    ['{{ .clientId.toString }}', /must start with \.name/],
  ])('refuses %s', (source, message) => {
    expect(() => parseTemplate(source)).toThrow(message);
  });

  it('names the key and the missing value', () => {
    expect(() => renderData({ URL: '{{ .userinfoEndpoint }}' }, values)).toThrow(
      'spec.secretTemplate.data.URL: .userinfoEndpoint has no value (the provider\'s discovery document has no userinfo_endpoint); add | default "<text>" to allow that',
    );
    expect(() => renderData({ S: '{{ .clientSecret }}' }, { ...values, clientSecret: undefined })).toThrow(
      /the provider issued no client_secret/,
    );
    expect(() => renderData({ R: '{{ .postLogoutRedirectUris | first }}' }, values)).toThrow(
      /the list is empty/,
    );
  });

  it('renders values literally: no placeholder inside a value is expanded again', () => {
    expect(renderTemplate('{{ .clientSecret }}', { ...values, clientSecret: '{{ .clientId }}' })).toBe(
      '{{ .clientId }}',
    );
  });
});

describe("secret templates: the CRD rule's pattern", () => {
  const samples = [
    '{{ .clientId }}',
    '{{ .scopes | join " " }}',
    '{{ .scopes | first | b64enc | default "x" }}',
    'a{b{{ .issuer }}c}}',
    'trailing {',
    '{{ .nope }}',
    '{{ .scopes }}',
    '{{{ .clientId }}',
    '{{ .clientId | join "," }}',
    '{{ .clientId | join "}}" }}',
    '{{ .scopes | b64enc | join "," }}',
    '{{}}',
    '{{ .clientId',
  ];
  it.each(samples)('agrees with the parser on %s', (s) => {
    expect(pattern.test(s)).toBe(parses(s));
  });

  it('agrees with the parser on random input built from template pieces', () => {
    const piece = fc.constantFrom(
      '{{',
      '}}',
      '{',
      '}',
      ' ',
      '|',
      '"',
      ',',
      'x',
      '.',
      'join',
      'first',
      'default',
      'b64enc',
      ...SCALAR_NAMES.map((n) => `.${n}`),
      ...LIST_NAMES.map((n) => `.${n}`),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const s = pieces.join('');
        expect(pattern.test(s), s).toBe(parses(s));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('validateOidcClientSpec: secretTemplate data, type and mergePolicy', () => {
  const spec = (secretTemplate: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    providerRef: { name: 'iam' },
    secretTemplate,
    ...extra,
  });

  it('accepts a valid template', () => {
    expect(
      validateOidcClientSpec(
        spec({
          type: 'kubernetes.io/basic-auth',
          mergePolicy: 'Replace',
          data: { username: '{{ .clientId }}', password: '{{ .clientSecret }}' },
        }),
      ),
    ).toEqual([]);
  });

  it('refuses what the CRD refuses, with the same message first', () => {
    const issues = validateOidcClientSpec(spec({ data: { 'bad key': 'x', OK: '{{ .clientID }}' } }));
    expect(issues).toEqual([
      {
        path: '/spec/secretTemplate/data/bad key',
        message: 'Secret keys must be at most 253 characters of letters, digits, "-", "_" and "."',
      },
      {
        path: '/spec/secretTemplate/data/OK',
        message: expect.stringContaining('invalid template: unknown name .clientID'),
      },
    ]);
    expect(TEMPLATE_VALUES_MESSAGE.startsWith('invalid template: ')).toBe(true);
  });

  it('refuses built-in types it cannot fill, basic-auth without its keys and an empty Replace', () => {
    expect(validateOidcClientSpec(spec({ type: 'kubernetes.io/tls' }))[0]?.message).toMatch(
      /^type must be Opaque, kubernetes.io\/basic-auth or a type outside kubernetes.io/,
    );
    expect(validateOidcClientSpec(spec({ type: 'kubernetes.io/basic-auth' }))[0]?.message).toBe(
      'type kubernetes.io/basic-auth needs a username or password key in data',
    );
    expect(validateOidcClientSpec(spec({ mergePolicy: 'Replace' }))[0]?.message).toBe(
      'mergePolicy Replace needs at least one key in data',
    );
    expect(validateOidcClientSpec(spec({ type: 'servicebinding.io/oidc' }))).toEqual([]);
  });

  it('refuses .clientSecret without default for a public client', () => {
    const none = { tokenEndpointAuthMethod: 'none' };
    expect(validateOidcClientSpec(spec({ data: { S: '{{ .clientSecret }}' } }, none))[0]?.message).toMatch(
      /\.clientSecret has no value with tokenEndpointAuthMethod none/,
    );
    expect(validateOidcClientSpec(spec({ data: { S: '{{ .clientSecret | default "" }}' } }, none))).toEqual(
      [],
    );
  });
});
