// What a user does during a chaos run: apply OidcClients in waves, edit some, delete some, all with
// kubectl the way people do. kubectl calls are retried while the apiserver restarts.
import { stringify } from 'yaml';
import type { OidcClient } from '../../../src/api/types.generated.js';
import type { ToolResult } from '../exec.js';
import { GROUP, VERSION } from '../oidc.js';

export type Kubectl = (args: string[], input?: string) => Promise<ToolResult>;

export function chaosClientName(i: number): string {
  return `chaos-${String(i).padStart(4, '0')}`;
}

export function redirectUri(name: string, revision: number): string {
  return revision === 0 ? `https://${name}.example.org/cb` : `https://${name}.example.org/cb-r${revision}`;
}

/** A confidential web client that may also use client_credentials, so its Secret can be tested at the token endpoint. */
export function chaosClient(name: string, provider: string): OidcClient {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'OidcClient',
    metadata: { name },
    spec: {
      providerRef: { name: provider },
      redirectUris: [redirectUri(name, 0)],
      grantTypes: ['authorization_code', 'client_credentials'],
      responseTypes: ['code'],
      scopes: ['openid', 'profile'],
    },
  };
}

export function clientsYaml(names: readonly string[], provider: string): string {
  return names.map((n) => stringify(chaosClient(n, provider))).join('---\n');
}

export function providerYaml(name: string, issuer: string, maxConcurrentRequests: number): string {
  return `apiVersion: ${GROUP}/${VERSION}
kind: OidcProvider
metadata:
  name: ${name}
spec:
  issuerUrl: ${issuer}
  maxConcurrentRequests: ${maxConcurrentRequests}
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs kubectl until it succeeds or `timeoutMs` passes: during an apiserver restart it fails with
 * "connection refused" and a user would simply run it again. Returns the attempts it took.
 */
export async function kubectlRetrying(
  kubectl: Kubectl,
  args: string[],
  input: string | undefined,
  timeoutMs: number,
): Promise<{ result: ToolResult; attempts: number }> {
  const deadline = Date.now() + timeoutMs;
  for (let attempts = 1; ; attempts++) {
    const result = await kubectl(args, input);
    if (result.code === 0) return { result, attempts };
    if (Date.now() > deadline) {
      throw new Error(
        `kubectl ${args.join(' ')} failed ${attempts} times; last: ${result.stderr.trim().slice(0, 500)}`,
      );
    }
    await sleep(Math.min(5_000, 500 * attempts));
  }
}

/** A JSON merge patch that changes a client's redirect URI (a spec change: PUT at the provider). */
export function redirectPatch(name: string, revision: number): string {
  return JSON.stringify({ spec: { redirectUris: [redirectUri(name, revision)] } });
}

export function isReadyForGeneration(cr: OidcClient): boolean {
  const ready = cr.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True' && cr.status?.observedGeneration === cr.metadata.generation;
}
