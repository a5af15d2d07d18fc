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

  it('reads empty strings, null, [] and {} as "not set", and drops empty list entries', () => {
    expect(
      specFromMetadata({
        client_name: 'n',
        client_uri: '',
        logo_uri: '',
        policy_uri: '',
        tos_uri: '',
        jwks_uri: '',
        contacts: null,
        response_types: null,
        post_logout_redirect_uris: [],
        grant_types: ['authorization_code', '', null],
        redirect_uris: [''],
        scope: '',
      }),
    ).toEqual({ clientName: 'n', grantTypes: ['authorization_code'] });
  });

  it('keeps only client-chosen, non-empty, non-standard fields as extraMetadata, as chosen', () => {
    const metadata = {
      ...adoptable,
      reuse_refresh_token: true,
      owner: '',
      audience: [],
      metadata: {},
      jwks: {},
      updated_at: '2025-01-01T00:00:00Z',
      subject_type: 'public',
    };
    expect(extraMetadataFrom(metadata)).toEqual({ reuse_refresh_token: true, subject_type: 'public' });
    expect(extraMetadataFrom(metadata, 'none')).toEqual({});
    expect(extraMetadataFrom(metadata, ['subject_type', 'owner', 'nope'])).toEqual({
      subject_type: 'public',
    });
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
    expect(result.leftToProvider).toEqual([
      'reuse_refresh_token',
      'clear_access_tokens_on_refresh',
      'require_auth_time',
    ]);
    expect(result.unmanaged).toBe(false);
    expect(result.notRepresentable).toEqual([]);

    // The YAML round-trips to the same objects, Secret first, and says to keep the Secret out of Git.
    const docs = parseAllDocuments(result.yaml);
    expect(Array.from(docs, (d) => d.toJS() as unknown)).toEqual([result.secret, result.client]);
    expect(result.yaml.split('\n')[0]).toMatch(/^# Secret grafana-oidc-adopt/);
    expect(result.yaml).toContain('DO NOT COMMIT');
    expect(checkManifestText(result.yaml)).toEqual({ documents: 2, validated: 1, skipped: 1, issues: [] });
    expect(validateResource(result.client).issues).toEqual([]);
  });

  it('carries non-standard fields into extraMetadata when asked to', async () => {
    const text = await readFile(fixturePath, 'utf8');
    expect(importIamClient(text, { ...opts, extraMetadata: 'all' }).client.spec.extraMetadata).toEqual({
      reuse_refresh_token: true,
      clear_access_tokens_on_refresh: true,
      require_auth_time: false,
    });
    const some = importIamClient(text, { ...opts, extraMetadata: ['reuse_refresh_token', 'absent'] });
    expect(some.client.spec.extraMetadata).toEqual({ reuse_refresh_token: true });
    expect(some.leftToProvider).toEqual(['clear_access_tokens_on_refresh', 'require_auth_time']);
    expect(some.notFound).toEqual(['absent']);
  });

  it('accepts what a server with empty values and vendor fields answered (Hydra-like) and validates it', () => {
    const answer = {
      ...adoptable,
      client_secret: 'S',
      client_name: 'shop',
      redirect_uris: ['https://shop.example.org/cb'],
      grant_types: ['authorization_code'],
      response_types: null,
      scope: 'openid email',
      client_uri: '',
      logo_uri: '',
      policy_uri: '',
      tos_uri: '',
      jwks_uri: '',
      contacts: null,
      post_logout_redirect_uris: null,
      token_endpoint_auth_method: 'client_secret_basic',
      created_at: '2025-01-01T00:00:00.000Z',
      updated_at: '2025-01-01T00:00:00.000Z',
      owner: '',
      audience: [],
      metadata: {},
      jwks: {},
      client_secret_expires_at: 1_900_000_000,
    };
    const result = importIamClient(JSON.stringify(answer), opts);
    expect(result.client.spec).toEqual({
      providerRef: { name: 'iam', kind: 'OidcProvider' },
      clientName: 'shop',
      redirectUris: ['https://shop.example.org/cb'],
      grantTypes: ['authorization_code'],
      scopes: ['openid', 'email'],
      tokenEndpointAuthMethod: 'client_secret_basic',
      adoptFrom: { secretRef: { name: 'grafana-oidc-adopt', key: 'client.json' } },
    });
    expect(result.leftToProvider).toEqual([]);
    expect(validateResource(result.client).issues).toEqual([]);
    expect(checkManifestText(result.yaml).issues).toEqual([]);
    // With every extra asked for, empty vendor fields still stay out.
    expect(
      importIamClient(JSON.stringify(answer), { ...opts, extraMetadata: 'all' }).client.spec,
    ).not.toHaveProperty('extraMetadata');
  });

  it('imports credentials without a registration access token as an unmanaged registration', () => {
    const result = importIamClient(
      JSON.stringify({ client_id: 'c', client_secret: 'TOP-SECRET', client_name: 'x' }),
      opts,
    );
    expect(result.unmanaged).toBe(true);
    expect(result.client.spec.clientName).toBe('x');
    expect(result.yaml).toContain('no registration access token');
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
    expect(attempt(JSON.stringify({ client_id: '', client_secret: 'TOP-SECRET' }))).toThrow(
      /lacks client_id/,
    );
    expect(
      attempt(
        JSON.stringify({ client_id: 'c', client_secret: 'TOP-SECRET', registration_access_token: 'RAT' }),
      ),
    ).toThrow(/has registration_access_token but lacks registration_client_uri/);
    expect(
      attempt(
        JSON.stringify({ client_id: 'c', client_secret: 'TOP-SECRET', registration_access_token: 'RAT' }),
      ),
    ).not.toThrow(/TOP-SECRET|RAT"/);
  });

  it('leaves metadata the spec cannot hold to the provider, naming fields and paths, not values', () => {
    const bad = JSON.stringify({
      ...adoptable,
      client_name: 'kept',
      token_endpoint_auth_method: 'tls_client_auth',
      redirect_uris: 'x',
      logo_uri: 'not a uri',
    });
    const result = importIamClient(bad, opts);
    expect(result.client.spec).toEqual({
      providerRef: { name: 'iam', kind: 'OidcProvider' },
      clientName: 'kept',
      adoptFrom: { secretRef: { name: 'grafana-oidc-adopt', key: 'client.json' } },
    });
    expect(result.notRepresentable.map((n) => n.field).sort()).toEqual([
      'logo_uri',
      'redirect_uris',
      'token_endpoint_auth_method',
    ]);
    expect(JSON.stringify(result.notRepresentable)).not.toContain('tls_client_auth');
    expect(JSON.stringify(result.notRepresentable)).not.toContain('not a uri');
    expect(validateResource(result.client).issues).toEqual([]);
  });

  it('rejects a name that cannot name the objects', () => {
    expect(() => importIamClient(JSON.stringify(adoptable), { ...opts, name: 'Grafana' })).toThrow(
      /DNS-1123/,
    );
  });
});
