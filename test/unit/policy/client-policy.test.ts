import { describe, expect, it } from 'vitest';
import type { ClientPolicy, OidcClientSpec } from '../../../src/api/types.generated.js';
import {
  checkClientPolicy,
  hostMatches,
  policyProblems,
  redirectUriProblem,
} from '../../../src/policy/client-policy.js';

const spec = (extra: Partial<OidcClientSpec> = {}): OidcClientSpec => ({
  providerRef: { name: 'p' },
  ...extra,
});
const messages = (policy: ClientPolicy, s: OidcClientSpec) =>
  checkClientPolicy(policy, s).map((v) => v.message);

describe('checkClientPolicy', () => {
  it('no policy, or an empty one, limits nothing', () => {
    const everything = spec({
      grantTypes: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      scopes: ['admin'],
      redirectUris: ['http://evil.example/cb'],
      extraMetadata: { access_token_validity_seconds: 999999 },
    });
    expect(checkClientPolicy(undefined, everything)).toEqual([]);
    expect(checkClientPolicy({}, everything)).toEqual([]);
  });

  it('grant types, response types and auth methods: values and RFC 7591 defaults are checked', () => {
    const policy: ClientPolicy = {
      allowedGrantTypes: ['client_credentials'],
      allowedResponseTypes: ['code'],
      allowedTokenEndpointAuthMethods: ['private_key_jwt'],
    };
    expect(messages(policy, spec())).toEqual([
      'spec.grantTypes (not set, so authorization_code): "authorization_code" is not allowed (allowed: client_credentials)',
      'spec.tokenEndpointAuthMethod (not set, so client_secret_basic): "client_secret_basic" is not allowed (allowed: private_key_jwt)',
    ]);
    expect(
      checkClientPolicy(
        policy,
        spec({
          grantTypes: ['client_credentials', 'implicit'],
          responseTypes: ['token'],
          tokenEndpointAuthMethod: 'none',
        }),
      ),
    ).toEqual([
      {
        field: 'spec.grantTypes[1]',
        value: 'implicit',
        message: 'spec.grantTypes[1]: "implicit" is not allowed (allowed: client_credentials)',
      },
      {
        field: 'spec.responseTypes[0]',
        value: 'token',
        message: 'spec.responseTypes[0]: "token" is not allowed (allowed: code)',
      },
      {
        field: 'spec.tokenEndpointAuthMethod',
        value: 'none',
        message: 'spec.tokenEndpointAuthMethod: "none" is not allowed (allowed: private_key_jwt)',
      },
    ]);
    expect(
      checkClientPolicy(
        policy,
        spec({ grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'private_key_jwt' }),
      ),
    ).toEqual([]);
  });

  it('scopes: each must be allowed; leaving them out is the provider default', () => {
    const policy: ClientPolicy = { allowedScopes: ['openid', 'profile'] };
    expect(messages(policy, spec({ scopes: ['openid', 'iam:admin.write'] }))).toEqual([
      'spec.scopes[1]: "iam:admin.write" is not allowed (allowed: openid, profile)',
    ]);
    expect(messages(policy, spec())).toEqual([]);
    expect(messages({ allowedScopes: [] }, spec({ scopes: ['openid'] }))).toEqual([
      'spec.scopes[0]: "openid" is not allowed (allowed: none)',
    ]);
  });

  it('extraMetadata keys', () => {
    expect(
      messages(
        { allowedExtraMetadataKeys: ['reuse_refresh_token'] },
        spec({ extraMetadata: { reuse_refresh_token: true, access_token_validity_seconds: 1e9 } }),
      ),
    ).toEqual([
      'spec.extraMetadata: key "access_token_validity_seconds" is not allowed (allowed: reuse_refresh_token)',
    ]);
  });

  it('redirect and post-logout redirect URIs follow the same rules', () => {
    const policy: ClientPolicy = { redirectUris: { allowedHosts: ['*.apps.example.org'] } };
    const found = checkClientPolicy(
      policy,
      spec({
        redirectUris: ['https://web.apps.example.org/cb', 'https://evil.example/cb'],
        postLogoutRedirectUris: ['http://web.apps.example.org/'],
      }),
    );
    expect(found.map((v) => [v.field, v.value])).toEqual([
      ['spec.redirectUris[1]', 'https://evil.example/cb'],
      ['spec.postLogoutRedirectUris[0]', 'http://web.apps.example.org/'],
    ]);
    expect(found[0]?.message).toBe(
      'spec.redirectUris[1]: "https://evil.example/cb" is not allowed: host "evil.example" is not in allowedHosts (*.apps.example.org)',
    );
    expect(found[1]?.message).toMatch(/uses scheme http, not allowed \(allowed: https\)/);
  });
});

describe('redirectUriProblem', () => {
  it('https only by default, other schemes when listed', () => {
    expect(redirectUriProblem({}, 'https://a.example/cb')).toBeUndefined();
    expect(redirectUriProblem({}, 'http://a.example/cb')).toMatch(/scheme http/);
    expect(redirectUriProblem({}, 'javascript:alert(1)')).toMatch(/scheme javascript/);
    expect(
      redirectUriProblem({ allowedSchemes: ['https', 'org.example.app'] }, 'org.example.app:/cb'),
    ).toBeUndefined();
  });

  it('refuses user information and characters a different parser could read another host from', () => {
    expect(redirectUriProblem({}, 'https://good.example@evil.example/cb')).toMatch(/user information/);
    expect(redirectUriProblem({}, 'https://evil.example\\@good.example/cb')).toMatch(/outside RFC 3986/);
    expect(redirectUriProblem({}, 'https://good.example /cb')).toMatch(/outside RFC 3986/);
    expect(redirectUriProblem({}, 'https://gööd.example/cb')).toMatch(/outside RFC 3986/);
  });

  it('allowedHosts: exact names and *.suffix wildcards, the port is not compared', () => {
    const rules = { allowedHosts: ['app.example.org', '*.apps.example.org'] };
    expect(redirectUriProblem(rules, 'https://app.example.org:8443/cb')).toBeUndefined();
    expect(redirectUriProblem(rules, 'https://APP.example.org/cb')).toBeUndefined();
    expect(redirectUriProblem(rules, 'https://a.b.apps.example.org/cb')).toBeUndefined();
    expect(redirectUriProblem(rules, 'https://apps.example.org/cb')).toMatch(/not in allowedHosts/);
    expect(redirectUriProblem(rules, 'https://evilapps.example.org/cb')).toMatch(/not in allowedHosts/);
    expect(redirectUriProblem(rules, 'https://app.example.org.evil.example/cb')).toMatch(
      /not in allowedHosts/,
    );
    expect(redirectUriProblem(rules, 'https://app.example.org./cb')).toMatch(/not in allowedHosts/);
  });

  it('allowedPatterns are anchored; a URI matching hosts OR patterns is allowed', () => {
    const rules = {
      allowedHosts: ['app.example.org'],
      allowedPatterns: ['https://[a-z]+\\.example\\.net/cb'],
    };
    expect(redirectUriProblem(rules, 'https://x.example.net/cb')).toBeUndefined();
    expect(redirectUriProblem(rules, 'https://x.example.net/cb/more')).toBe(
      'is not allowed: host "x.example.net" is not in allowedHosts (app.example.org) and it matches none of allowedPatterns',
    );
    expect(redirectUriProblem(rules, 'https://app.example.org/anything')).toBeUndefined();
    expect(redirectUriProblem({ allowedPatterns: ['(broken'] }, 'https://x/')).toMatch(/matches none/);
  });

  it('hostMatches', () => {
    expect(hostMatches('*.example.org', 'a.example.org')).toBe(true);
    expect(hostMatches('*.example.org', 'example.org')).toBe(false);
    expect(hostMatches('*.example.org', 'aexample.org')).toBe(false);
    expect(hostMatches('127.0.0.1', '127.0.0.1')).toBe(true);
  });
});

describe('policyProblems', () => {
  it('reports patterns that do not compile', () => {
    expect(policyProblems({ redirectUris: { allowedPatterns: ['ok', '(broken'] } })).toEqual([
      expect.stringMatching(
        /^clientPolicy\.redirectUris\.allowedPatterns\[1\] is not a valid regular expression/,
      ),
    ]);
    expect(policyProblems(undefined)).toEqual([]);
  });
});
