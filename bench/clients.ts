// The benchmark's input: one multi-document YAML file with N OidcClients, as a user would apply it.
import { stringify } from 'yaml';
import type { OidcClient } from '../src/api/types.generated.js';

export function clientName(i: number, count: number): string {
  return `bench-${String(i).padStart(String(count).length, '0')}`;
}

/** A typical web client; no extraMetadata, so one registration is all a client needs. */
export function benchClient(name: string, provider: string): OidcClient {
  return {
    apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
    kind: 'OidcClient',
    metadata: { name },
    spec: {
      providerRef: { name: provider },
      clientName: name,
      redirectUris: [`https://${name}.example.org/oauth2/callback`],
      grantTypes: ['authorization_code', 'refresh_token'],
      responseTypes: ['code'],
      scopes: ['openid', 'profile', 'email'],
    },
  };
}

export function clientsYaml(count: number, provider: string): string {
  const docs: string[] = [];
  for (let i = 1; i <= count; i++) docs.push(stringify(benchClient(clientName(i, count), provider)));
  return docs.join('---\n');
}
