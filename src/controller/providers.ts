import type { Logger } from 'pino';
import { API_GROUP_VERSION } from '../api/schema.js';
import type {
  ClusterOidcProvider,
  NamespacedSecretKeySelector,
  OidcClient,
  OidcProvider,
  OidcProviderStatus,
} from '../api/types.generated.js';
import type { Fence } from '../kube/fence.js';
import { type CacheReader, errorMessage } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import { readSecret } from '../kube/secrets.js';
import { RegistrationClient } from '../registration/client.js';
import { discoverEndpoints } from '../registration/discovery.js';
import type { ProviderEndpoints, RequestObserver } from '../registration/types.js';
import { setCondition } from './conditions.js';
import { decode } from './secrets.js';
import { statusPatch } from './status.js';

type AnyProvider = OidcProvider | ClusterOidcProvider;

/** spec.maxConcurrentRequests when unset: requests in flight to one provider, and its share of the workers. */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 4;

/** The provider cannot be used yet; `reason` goes on the OidcClient's Ready condition. */
export class ProviderNotReadyError extends Error {
  constructor(
    readonly reason: 'ProviderNotFound' | 'ProviderUnavailable' | 'ProviderInvalid',
    message: string,
  ) {
    super(message);
    this.name = 'ProviderNotReadyError';
  }
}

export interface ResolvedProvider {
  key: string;
  endpoints: ProviderEndpoints;
  client: RegistrationClient;
}

interface Entry {
  version: string;
  resolved: Promise<ResolvedProvider>;
}

export function providerKeyOf(cr: OidcClient): { kind: 'OidcProvider' | 'ClusterOidcProvider'; key: string } {
  const kind = cr.spec.providerRef.kind ?? 'OidcProvider';
  return kind === 'ClusterOidcProvider'
    ? { kind, key: `cluster/${cr.spec.providerRef.name}` }
    : { kind, key: `${cr.metadata.namespace}/${cr.spec.providerRef.name}` };
}

export class ProviderRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly deps: {
      rest: KubeRest;
      providers: CacheReader<OidcProvider>;
      clusterProviders: CacheReader<ClusterOidcProvider>;
      log: Logger;
      observe?: RequestObserver;
      /** Timeout and retries for provider calls; tests shorten them. */
      requestTimeoutMs?: number;
      retries?: number;
      /** Leadership fence for every provider call. */
      fence?: Fence;
    },
  ) {}

  async resolve(cr: OidcClient): Promise<ResolvedProvider> {
    const { kind, key } = providerKeyOf(cr);
    const provider =
      kind === 'ClusterOidcProvider'
        ? this.deps.clusterProviders.get(cr.spec.providerRef.name)
        : this.deps.providers.get(`${cr.metadata.namespace}/${cr.spec.providerRef.name}`);
    if (!provider) {
      throw new ProviderNotReadyError(
        'ProviderNotFound',
        `${kind} ${cr.spec.providerRef.name} not found${kind === 'OidcProvider' ? ` in namespace ${cr.metadata.namespace}` : ''}`,
      );
    }
    const version = `${provider.metadata.uid}/${provider.metadata.generation}`;
    const existing = this.entries.get(key);
    if (existing && existing.version === version) return existing.resolved;
    if (existing) void existing.resolved.then((r) => r.client.close()).catch(() => undefined);
    const resolved = this.build(key, provider);
    this.entries.set(key, { version, resolved });
    // A failed discovery must not stick: the next reconcile tries again (the queue backs off).
    resolved.catch(() => {
      if (this.entries.get(key)?.resolved === resolved) this.entries.delete(key);
    });
    return resolved;
  }

  /**
   * For deleting a client: namespace deletion removes the OidcProvider at the same time as the
   * OidcClient, yet the RFC 7592 DELETE needs only the registration_client_uri and the token.
   * So a provider that is gone still serves from its last resolved client, or from a bare client
   * (default trust store) when this process never resolved it.
   */
  async resolveForDeletion(cr: OidcClient, issuer: string | undefined): Promise<ResolvedProvider> {
    try {
      return await this.resolve(cr);
    } catch (error) {
      if (!(error instanceof ProviderNotReadyError) || error.reason !== 'ProviderNotFound') throw error;
      const { key } = providerKeyOf(cr);
      const cached = this.entries.get(key);
      if (cached) return cached.resolved;
      const endpoints: ProviderEndpoints = {
        issuer: issuer ?? '',
        registrationEndpoint: '',
        source: 'explicit',
      };
      const client = new RegistrationClient({
        endpoints,
        requestTimeoutMs: this.deps.requestTimeoutMs,
        retries: this.deps.retries,
        observe: this.deps.observe,
        fence: this.deps.fence,
      });
      const resolved = Promise.resolve({ key, endpoints, client });
      this.entries.set(key, { version: 'gone', resolved });
      return resolved;
    }
  }

  /** Drops the cached client (e.g. after the initial access token was rejected, to re-read it). */
  invalidate(key: string): void {
    const e = this.entries.get(key);
    this.entries.delete(key);
    if (e) void e.resolved.then((r) => r.client.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.allSettled(all.map(async (e) => (await e.resolved).client.close()));
  }

  private async build(key: string, provider: AnyProvider): Promise<ResolvedProvider> {
    const spec = provider.spec;
    const ns = provider.metadata.namespace;
    try {
      const caPem = spec.caSecretRef ? await this.readSecretKey(spec.caSecretRef, ns, 'ca.crt') : undefined;
      const initialAccessToken = spec.initialAccessTokenSecretRef
        ? await this.readSecretKey(spec.initialAccessTokenSecretRef, ns, 'token')
        : undefined;
      const endpoints = await discoverEndpoints({
        issuerUrl: spec.issuerUrl,
        registrationEndpoint: spec.registrationEndpoint,
        caPem,
        // The same per-request timeout as every other provider call (default 10 s × 4 attempts).
        requestTimeoutMs: this.deps.requestTimeoutMs,
        signal: this.deps.fence?.signal,
      });
      const client = new RegistrationClient({
        endpoints,
        caPem,
        initialAccessToken,
        maxConcurrentRequests: spec.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS,
        observe: this.deps.observe,
        requestTimeoutMs: this.deps.requestTimeoutMs,
        retries: this.deps.retries,
        fence: this.deps.fence,
      });
      await this.writeStatus(
        provider,
        true,
        'Discovered',
        `registration endpoint ${endpoints.registrationEndpoint} (${endpoints.source})`,
        endpoints,
      );
      return { key, endpoints, client };
    } catch (error) {
      const notReady =
        error instanceof ProviderNotReadyError
          ? error
          : new ProviderNotReadyError('ProviderUnavailable', `provider ${key}: ${errorMessage(error)}`);
      await this.writeStatus(provider, false, notReady.reason, notReady.message);
      throw notReady;
    }
  }

  private async readSecretKey(
    ref: NamespacedSecretKeySelector,
    providerNamespace: string | undefined,
    defaultKey: string,
  ): Promise<string> {
    const ns = providerNamespace ?? ref.namespace;
    if (providerNamespace && ref.namespace && ref.namespace !== providerNamespace) {
      throw new ProviderNotReadyError(
        'ProviderInvalid',
        `Secret ${ref.name} must be in namespace ${providerNamespace}`,
      );
    }
    if (!ns) throw new ProviderNotReadyError('ProviderInvalid', `Secret ${ref.name}: namespace is required`);
    const key = ref.key ?? defaultKey;
    const secret = await readSecret(this.deps.rest, ns, ref.name);
    if (!secret) throw new ProviderNotReadyError('ProviderInvalid', `Secret ${ns}/${ref.name} not found`);
    const value = decode(secret, key);
    if (!value)
      throw new ProviderNotReadyError('ProviderInvalid', `Secret ${ns}/${ref.name} has no key ${key}`);
    return value;
  }

  /** Writes the provider's status only when it changes (idle means idle). */
  private async writeStatus(
    provider: AnyProvider,
    ready: boolean,
    reason: string,
    message: string,
    endpoints?: ProviderEndpoints,
  ): Promise<void> {
    const old = provider.status ?? {};
    const now = new Date().toISOString();
    const next: OidcProviderStatus = {
      observedGeneration: provider.metadata.generation,
      registrationEndpoint: endpoints?.registrationEndpoint ?? old.registrationEndpoint,
      tokenEndpoint: endpoints?.tokenEndpoint ?? old.tokenEndpoint,
      conditions: setCondition(
        old.conditions ?? [],
        { type: 'Ready', status: ready ? 'True' : 'False', reason, message },
        provider.metadata.generation,
        now,
      ),
    };
    const patch = statusPatch(old, next);
    if (!patch) return;
    const plural = provider.kind === 'ClusterOidcProvider' ? 'clusteroidcproviders' : 'oidcproviders';
    const base = `/apis/${API_GROUP_VERSION}`;
    const path = provider.metadata.namespace
      ? `${base}/namespaces/${provider.metadata.namespace}/${plural}/${provider.metadata.name}/status`
      : `${base}/${plural}/${provider.metadata.name}/status`;
    try {
      await this.deps.rest.patch(path, 'merge', patch);
    } catch (error) {
      this.deps.log.warn(
        { provider: provider.metadata.name, err: errorMessage(error) },
        'provider status not written',
      );
    }
  }
}
