// Helpers for OidcClient end-to-end tests: YAML the way users write it, and readers for what the
// operator produced (status, Secrets, Events).
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { OidcClient } from '../../src/api/types.generated.js';
import { isApiError } from './kube.js';
import { waitFor } from './wait.js';

export const GROUP = 'oidc.dcr-operator.dev';
export const VERSION = 'v1alpha1';

export function providerYaml(name: string, issuer: string, extra = ''): string {
  return `apiVersion: ${GROUP}/${VERSION}
kind: OidcProvider
metadata:
  name: ${name}
spec:
  issuerUrl: ${issuer}
${extra}`;
}

export function clientYaml(name: string, provider: string, specLines: string): string {
  return `apiVersion: ${GROUP}/${VERSION}
kind: OidcClient
metadata:
  name: ${name}
spec:
  providerRef:
    name: ${provider}
${specLines}`;
}

/** Asks the token endpoint whether the credentials authenticate (anything but invalid_client). */
export async function credentialsAuthenticate(
  tokenEndpoint: string,
  id: string,
  secret: string,
): Promise<boolean> {
  const pair = `${encodeURIComponent(id)}:${encodeURIComponent(secret)}`;
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(pair).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  const body = (await res.json()) as { error?: string };
  return body.error !== 'invalid_client';
}

export class OidcReader {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  constructor(
    kc: KubeConfig,
    readonly namespace: string,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  async client(name: string): Promise<OidcClient | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: 'oidcclients',
        name,
      })) as OidcClient;
    } catch (error) {
      if (isApiError(error, 404)) return undefined;
      throw error;
    }
  }

  async secret(name: string): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ name, namespace: this.namespace });
    } catch (error) {
      if (isApiError(error, 404)) return undefined;
      throw error;
    }
  }

  async secretValues(name: string): Promise<Record<string, string> | undefined> {
    const s = await this.secret(name);
    if (!s) return undefined;
    return Object.fromEntries(
      Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }

  async events(involvedName: string): Promise<{ reason: string; message: string; type: string }[]> {
    const list = await this.core.listNamespacedEvent({ namespace: this.namespace });
    return list.items
      .filter((e) => e.involvedObject.name === involvedName)
      .map((e) => ({ reason: e.reason ?? '', message: e.message ?? '', type: e.type ?? '' }));
  }

  /** Events of an object with their aggregation count (one Event per series, count bumped). */
  async eventSeries(involvedName: string): Promise<{ reason: string; type: string; count: number }[]> {
    const list = await this.core.listNamespacedEvent({ namespace: this.namespace });
    return list.items
      .filter((e) => e.involvedObject.name === involvedName)
      .map((e) => ({ reason: e.reason ?? '', type: e.type ?? '', count: e.count ?? 1 }));
  }

  condition(cr: OidcClient | undefined, type: string) {
    return cr?.status?.conditions?.find((c) => c.type === type);
  }

  /** Waits until Ready has `status` for the current generation (and `reason`, when given). */
  async waitReady(
    name: string,
    opts: { status?: string; reason?: string; timeoutMs?: number } = {},
  ): Promise<OidcClient> {
    const want = opts.status ?? 'True';
    return waitFor(
      async () => {
        const cr = await this.client(name);
        const ready = this.condition(cr, 'Ready');
        if (!cr || cr.status?.observedGeneration !== cr.metadata.generation) return undefined;
        if (ready?.status !== want) return undefined;
        if (opts.reason && ready.reason !== opts.reason) return undefined;
        return cr;
      },
      {
        description: `OidcClient ${this.namespace}/${name} Ready=${want}${opts.reason ? ` (${opts.reason})` : ''}`,
        timeoutMs: opts.timeoutMs ?? 30_000,
        intervalMs: 200,
      },
    );
  }
}
