import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { OidcClient, SecretTemplate } from '../../../src/api/types.generated.js';
import {
  ANNOTATION_TEMPLATE_LABELS,
  appSecretValues,
  checkRenderable,
  mergedMetadata,
} from '../../../src/controller/app-secret-template.js';
import { appSecretMatches, desiredAppSecret, encodeData } from '../../../src/controller/secrets.js';

const client = (secretTemplate?: SecretTemplate, extra: Partial<OidcClient['spec']> = {}): OidcClient => ({
  apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
  kind: 'OidcClient',
  metadata: { name: 'web', namespace: 'ns', uid: 'uid-1' },
  spec: {
    providerRef: { name: 'iam' },
    redirectUris: ['https://web.example.org/cb'],
    ...extra,
    ...(secretTemplate ? { secretTemplate } : {}),
  },
});
const input = {
  clientId: 'id-1',
  clientSecret: 'sec',
  endpoints: { issuer: 'https://iam/', tokenEndpoint: 'https://iam/token', jwksUri: 'https://iam/jwks' },
};
const PROXY: SecretTemplate = {
  mergePolicy: 'Replace',
  data: {
    OAUTH2_PROXY_CLIENT_ID: '{{ .clientId }}',
    OAUTH2_PROXY_CLIENT_SECRET: '{{ .clientSecret }}',
    OAUTH2_PROXY_OIDC_ISSUER_URL: '{{ .issuer }}',
    OAUTH2_PROXY_REDIRECT_URL: '{{ .redirectUris | first }}',
  },
};

describe('application Secret from spec.secretTemplate', () => {
  it('keeps the default keys without a template, and under Merge with template keys winning', () => {
    expect(appSecretValues(client(), input)).toEqual({
      client_id: 'id-1',
      client_secret: 'sec',
      issuer: 'https://iam/',
      token_endpoint: 'https://iam/token',
    });
    expect(appSecretValues(client({ data: { issuer: 'x', JWKS: '{{ .jwksUri }}' } }), input)).toEqual({
      client_id: 'id-1',
      client_secret: 'sec',
      issuer: 'x',
      token_endpoint: 'https://iam/token',
      JWKS: 'https://iam/jwks',
    });
  });

  it('holds only the template keys under Replace (oauth2-proxy)', () => {
    expect(appSecretValues(client(PROXY), input)).toEqual({
      OAUTH2_PROXY_CLIENT_ID: 'id-1',
      OAUTH2_PROXY_CLIENT_SECRET: 'sec',
      OAUTH2_PROXY_OIDC_ISSUER_URL: 'https://iam/',
      OAUTH2_PROXY_REDIRECT_URL: 'https://web.example.org/cb',
    });
  });

  it('checks before registering that every placeholder will have a value', () => {
    expect(() => checkRenderable(client(PROXY), input.endpoints)).not.toThrow();
    expect(() =>
      checkRenderable(client({ data: { U: '{{ .userinfoEndpoint }}' } }), input.endpoints),
    ).toThrow(/spec.secretTemplate.data.U: .userinfoEndpoint has no value/);
  });

  it('sets the type, and records the label and annotation keys it set', () => {
    const cr = client({ type: 'example.org/oidc', labels: { b: '1', a: '2' }, annotations: { n: 'x' } });
    const s = desiredAppSecret(cr, 'web-oidc-client', {});
    expect(s.type).toBe('example.org/oidc');
    expect(s.metadata?.annotations).toEqual({
      n: 'x',
      'oidc.dcr-operator.dev/template-labels': 'a,b',
      'oidc.dcr-operator.dev/template-annotations': 'n',
    });
    // Without a template nothing is recorded (no extra annotation on every Secret).
    expect(desiredAppSecret(client(), 'web-oidc-client', {}).metadata?.annotations).toEqual({});
  });

  it('removes keys the template no longer sets and keeps keys others set', () => {
    const before = desiredAppSecret(client({ labels: { team: 'a', tier: 'x' } }), 'n', {});
    const current: V1Secret = {
      ...before,
      metadata: {
        ...before.metadata,
        labels: { ...before.metadata?.labels, 'someone.else/label': 'kept' },
        annotations: { ...before.metadata?.annotations, 'someone.else/note': 'kept' },
      },
    };
    const desired = desiredAppSecret(client({ labels: { team: 'b' } }), 'n', {});
    expect(appSecretMatches(current, desired)).toBe(false);
    const merged = mergedMetadata(current, desired);
    expect(merged.labels).toEqual({
      team: 'b',
      'someone.else/label': 'kept',
      'app.kubernetes.io/managed-by': 'oidc-client-operator',
      'oidc.dcr-operator.dev/client': 'web',
      'oidc.dcr-operator.dev/secret-role': 'credentials',
    });
    expect(merged.annotations).toEqual({
      'someone.else/note': 'kept',
      [ANNOTATION_TEMPLATE_LABELS]: 'team',
    });
    // Removing the last label drops the record too, and a Secret without labels from us matches.
    const none = desiredAppSecret(client(), 'n', {});
    expect(appSecretMatches(current, none)).toBe(false);
    const cleared = { ...current, metadata: { ...current.metadata, ...mergedMetadata(current, none) } };
    expect(cleared.metadata.labels).not.toHaveProperty('team');
    expect(cleared.metadata.annotations).toEqual({ 'someone.else/note': 'kept' });
    expect(appSecretMatches(cleared, none)).toBe(true);
  });

  it('sees a type change as a difference', () => {
    const want = desiredAppSecret(client({ type: 'example.org/oidc' }), 'n', encodeData({ a: 'b' }));
    expect(appSecretMatches({ ...want, type: 'Opaque' }, want)).toBe(false);
    expect(appSecretMatches(want, want)).toBe(true);
  });
});
