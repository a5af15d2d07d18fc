import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateResource } from '../../../src/api/validate.js';
import {
  extraMetadataFrom,
  ImportError,
  importIamClient,
  specFromMetadata,
} from '../../../src/cli/iam-client.js';
import { checkManifestText } from '../../../src/cli/manifests.js';

const fixturePath = resolve(import.meta.dirname, '../../fixtures/iam-client.json');
const opts = { name: 'grafana', provider: 'iam', providerKind: 'OidcProvider' as const };
const adoptable = {
  client_id: 'cid',
  registration_access_token: 'RAT-VALUE',
  registration_client_uri: 'https://iam.example.org/iam/api/client-registration/cid',
};

describe('specFromMetadata / extraMetadataFrom', () => {
  it('maps standard metadata to spec fields and splits scope', () => {
    expect(
      specFromMetadata({
        client_name: 'n',
        redirect_uris: ['https://a/cb', 'https://a/cb'],
        post_logout_redirect_uris: ['https://a/'],
        scope: '  openid   email openid ',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        contacts: ['x@example.org'],
        client_uri: 'https://a/',
        logo_uri: 'https://a/l',
        policy_uri: 'https://a/p',
        tos_uri: 'https://a/t',
        jwks_uri: 'https://a/j',
        application_type: 'web',
        jwks_other: 1,
        tos_null: null,
        logo_uri_unused: 'x',
      }),
    ).toEqual({
      clientName: 'n',
      redirectUris: ['https://a/cb'],
      postLogoutRedirectUris: ['https://a/'],
      scopes: ['openid', 'email'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      tokenEndpointAuthMethod: 'none',
      contacts: ['x@example.org'],
      clientUri: 'https://a/',
      logoUri: 'https://a/l',
      policyUri: 'https://a/p',
      tosUri: 'https://a/t',
      jwksUri: 'https://a/j',
      applicationType: 'web',
    });
    expect(specFromMetadata({ scope: ' ', client_name: null })).toEqual({});
  });

  it('keeps only client-chosen, non-null, non-standard fields as extraMetadata', () => {
    expect(
      extraMetadataFrom({
        ...adoptable,
        client_secret: 's',
        client_id_issued_at: 1,
        client_secret_expires_at: 0,
        created_at: 2,
        dynamically_registered: true,
        client_name: 'n',
        scope: 'openid',
        reuse_refresh_token: true,
        access_token_validity_seconds: 3600,
        jwks: { keys: [] },
        code_challenge_method: null,
      }),
    ).toEqual({ reuse_refresh_token: true, access_token_validity_seconds: 3600, jwks: { keys: [] } });
  });
});

describe('importIamClient', () => {
  it('turns the IAM fixture into a Secret and an adopting OidcClient that pass validate', async () => {
    const text = await readFile(fixturePath, 'utf8');
    const result = importIamClient(text, { ...opts, namespace: 'monitoring' });

    expect(result.client).toEqual({
      apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
      kind: 'OidcClient',
      metadata: { name: 'grafana', namespace: 'monitoring' },
      spec: {
        providerRef: { name: 'iam', kind: 'OidcProvider' },
        clientName: 'grafana-dashboards',
        redirectUris: ['https://grafana.apps.example.org/login/generic_oauth'],
        grantTypes: ['authorization_code', 'refresh_token'],
        responseTypes: ['code'],
        scopes: ['address', 'phone', 'openid', 'profile', 'offline_access', 'email'],
        tokenEndpointAuthMethod: 'client_secret_basic',
        contacts: ['ops@example.org'],
        extraMetadata: {
          reuse_refresh_token: true,
          clear_access_tokens_on_refresh: true,
          require_auth_time: false,
        },
        adoptFrom: { secretRef: { name: 'grafana-oidc-adopt', key: 'client.json' } },
      },
    });
    expect(result.secret).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'grafana-oidc-adopt', namespace: 'monitoring' },
      type: 'Opaque',
      stringData: { 'client.json': text },
    });
    expect(result.dropped).toEqual([
      'client_id',
      'client_secret',
      'dynamically_registered',
      'registration_access_token',
      'registration_client_uri',
      'created_at',
    ]);

    // The YAML round-trips to the same objects, Secret first, and says to keep the Secret out of Git.
    const docs = parseAllDocuments(result.yaml);
    expect(Array.from(docs, (d) => d.toJS() as unknown)).toEqual([result.secret, result.client]);
    expect(result.yaml.split('\n')[0]).toMatch(/^# Secret grafana-oidc-adopt/);
    expect(result.yaml).toContain('DO NOT COMMIT');
    expect(checkManifestText(result.yaml)).toEqual({ documents: 2, validated: 1, skipped: 1, issues: [] });
    expect(validateResource(result.client).issues).toEqual([]);
  });

  it('leaves the namespace out when none is given and honours the provider kind', () => {
    const result = importIamClient(JSON.stringify(adoptable), {
      ...opts,
      provider: 'iam-prod',
      providerKind: 'ClusterOidcProvider',
    });
    expect(result.client.metadata).toEqual({ name: 'grafana' });
    expect(result.client.spec.providerRef).toEqual({ name: 'iam-prod', kind: 'ClusterOidcProvider' });
    expect(result.client.spec).not.toHaveProperty('extraMetadata');
  });

  it('refuses JSON the operator cannot adopt, without echoing its content', () => {
    const attempt = (text: string) => () => importIamClient(text, opts);
    expect(attempt('{"client_secret": "TOP-SECRET" ')).toThrow(ImportError);
    expect(attempt('{"client_secret": "TOP-SECRET" ')).not.toThrow(/TOP-SECRET/);
    expect(attempt('["x"]')).toThrow(/must be an object/);
    expect(attempt(JSON.stringify({ client_id: 'c', client_secret: 'TOP-SECRET' }))).toThrow(
      /lacks registration_access_token, registration_client_uri/,
    );
  });

  it('reports metadata that does not fit the spec with paths, not values', () => {
    const bad = JSON.stringify({
      ...adoptable,
      token_endpoint_auth_method: 'tls_client_auth',
      redirect_uris: 'x',
    });
    try {
      importIamClient(bad, opts);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ImportError);
      expect((error as ImportError).issues.map((i) => i.path)).toEqual([
        '/spec/redirectUris',
        '/spec/tokenEndpointAuthMethod',
      ]);
      expect(JSON.stringify((error as ImportError).issues)).not.toContain('tls_client_auth');
    }
  });

  it('rejects a name that cannot name the objects', () => {
    expect(() => importIamClient(JSON.stringify(adoptable), { ...opts, name: 'Grafana' })).toThrow(
      /DNS-1123/,
    );
  });
});
