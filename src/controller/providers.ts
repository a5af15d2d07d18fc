import type { Logger } from 'pino';
import type { ClusterOidcProvider, OidcClient, OidcProvider } from '../api/types.generated.js';
import type { Fence } from '../kube/fence.js';
import { type CacheReader, errorMessage } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import type { ProviderLabels, ProviderRequestObservation } from '../observability/metrics.js';
import { RegistrationClient, type RegistrationClientOptions } from '../registration/client.js';
import { discoverEndpoints } from '../registration/discovery.js';
import { ProviderUnavailableError, RegistrationUnauthorizedError } from '../registration/errors.js';
import { ManagementOrigins, OriginConfigError } from '../registration/origins.js';
import { isTlsVerificationCode } from '../registration/policy.js';
import type { ProviderEndpoints, RequestObserver } from '../registration/types.js';
import { type AnyProvider, ProviderNotReadyError, readProviderTrust, type Trust } from './provider-trust.js';

/** spec.maxConcurrentRequests when unset: requests in flight to one provider, and its share of the workers. */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 4;

export { ProviderNotReadyError };

export interface ResolvedProvider {
  key: string;
  endpoints: ProviderEndpoints;
  client: RegistrationClient;
}

interface Entry {
  /** uid/generation of the provider object the client was built from. */
  version: string;
  resolved: Promise<ResolvedProvider>;
  /** Fingerprint of the CA bundle and initial access token read for it; undefined until read. */
  trust?: string;
  /** When the referenced Secrets were last read for this entry. */
  checkedAt: number;
  /** A re-read in flight, shared by concurrent reconciles. */
  recheck?: Promise<Entry>;
}

/** Default: a provider's CA / initial access token Secrets are re-read at most every 30 s. */
export const DEFAULT_SECRET_RECHECK_MS = 30_000;

/**
 * Calls a hook when an answer says the trust material is stale: a certificate that does not
 * verify against the CA bundle, or a registration refused for its initial access token. The
 * registry then drops the client (and its connections) so the next reconcile re-reads the Secrets.
 */
class TrustAwareClient extends RegistrationClient {
  constructor(
    opts: RegistrationClientOptions,
    private readonly onStaleTrust: () => void,
  ) {
    super(opts);
  }

  private watch<T>(call: Promise<T>): Promise<T> {
    return call.catch((error: unknown) => {
      if (isStaleTrust(error)) this.onStaleTrust();
      throw error;
    });
  }

  override register(...a: Parameters<RegistrationClient['register']>) {
    return this.watch(super.register(...a));
  }
  override read(...a: Parameters<RegistrationClient['read']>) {
    return this.watch(super.read(...a));
  }
  override update(...a: Parameters<RegistrationClient['update']>) {
    return this.watch(super.update(...a));
  }
  override delete(...a: Parameters<RegistrationClient['delete']>) {
    return this.watch(super.delete(...a));
  }
}

export function isStaleTrust(error: unknown): boolean {
  if (error instanceof RegistrationUnauthorizedError) return true;
  return error instanceof ProviderUnavailableError && isTlsVerificationCode(error.code);
}

/** Per-provider request metrics: labelled by the provider resource, released with it. */
export interface ProviderMetricsSink {
  observe(provider: ProviderLabels, e: Omit<ProviderRequestObservation, 'provider'>): void;
  release(provider: ProviderLabels): void;
}

export type ProviderKind = 'OidcProvider' | 'ClusterOidcProvider';

/**
 * A ClusterOidcProvider's key. Namespace names are lowercase DNS labels, so no OidcProvider's key
 * (`<namespace>/<name>`, its informer cache key) can start with this: the two kinds never share one.
 */
const CLUSTER_KEY_PREFIX = 'ClusterOidcProvider/';

/** The key of a provider resource: what the registry, the provider slots and the wake-ups use. */
export function providerKey(kind: ProviderKind, namespace: string | undefined, name: string): string {
  return kind === 'ClusterOidcProvider' ? `${CLUSTER_KEY_PREFIX}${name}` : `${namespace}/${name}`;
}

/** The provider resource a key names (namespace '' for a ClusterOidcProvider). */
export function parseProviderKey(key: string): ProviderLabels & { kind: ProviderKind } {
  if (key.startsWith(CLUSTER_KEY_PREFIX))
    return { kind: 'ClusterOidcProvider', namespace: '', name: key.slice(CLUSTER_KEY_PREFIX.length) };
  const slash = key.indexOf('/');
  return { kind: 'OidcProvider', namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function providerKeyOf(cr: OidcClient): { kind: ProviderKind; key: string } {
  const kind = cr.spec.providerRef.kind ?? 'OidcProvider';
  return { kind, key: providerKey(kind, cr.metadata.namespace, cr.spec.providerRef.name) };
}

/** Metric labels of a provider resource (namespace '' for a ClusterOidcProvider). */
function labelsOfProvider(provider: AnyProvider): ProviderLabels {
  const ns = provider.metadata.namespace;
  return ns
    ? { kind: 'OidcProvider', namespace: ns, name: provider.metadata.name ?? '' }
    : { kind: 'ClusterOidcProvider', namespace: '', name: provider.metadata.name ?? '' };
}

function providerLabelsOf(cr: OidcClient): ProviderLabels {
  const { kind } = providerKeyOf(cr);
  return {
    kind,
    namespace: kind === 'ClusterOidcProvider' ? '' : (cr.metadata.namespace ?? ''),
    name: cr.spec.providerRef.name,
  };
}

/**
 * Where a provider that is gone may still receive the DELETE of a client: only the origin the
 * operator itself recorded on the OidcClient's status (a tenant edits the management Secret, not the
 * status). Without it nothing is trusted and the finalizer gives up after --deletion-timeout.
 */
function checkOrigins(endpoint: string, origins: readonly string[]): void {
  try {
    new ManagementOrigins(endpoint, origins);
  } catch (error) {
    if (error instanceof OriginConfigError)
      throw new ProviderNotReadyError('ProviderInvalid', `spec.managementOrigins: ${error.message}`);
    throw error;
  }
}

function recordedOrigins(cr: OidcClient): string[] {
  const uri = cr.status?.registrationClientUri;
  if (!uri) return [];
  try {
    return [new URL(uri).origin];
  } catch {
    return [];
  }
}

export class ProviderRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly deps: {
      rest: KubeRest;
      providers: CacheReader<OidcProvider>;
      clusterProviders: CacheReader<ClusterOidcProvider>;
      log: Logger;
      metrics?: ProviderMetricsSink;
      /** Timeout and retries for provider calls; tests shorten them. */
      requestTimeoutMs?: number;
      retries?: number;
      /** Re-read the CA / initial access token Secrets at most this often (default 30 s). */
      secretRecheckMs?: number;
      /** Leadership fence for every provider call. */
      fence?: Fence;
      /** A ClusterOidcProvider's request limit for this shard (default: all of it). */
      clusterShare?: (maxConcurrentRequests: number) => number;
      /**
       * Called when a client of the provider could not be built or was refused for its trust
       * material: the provider health check re-checks it, so its status tells soon.
       */
      onTrouble?: (provider: AnyProvider) => void;
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
    if (existing && existing.version === version) return (await this.fresh(key, existing, provider)).resolved;
    return this.replace(key, version, provider).resolved;
  }

  /**
   * The entry itself while its Secrets were read less than secretRecheckMs ago; else re-reads them
   * (a GET each, no watch on every Secret of the cluster) and rebuilds when the CA bundle or the
   * initial access token changed.
   */
  private async fresh(key: string, entry: Entry, provider: AnyProvider): Promise<Entry> {
    const interval = this.deps.secretRecheckMs ?? DEFAULT_SECRET_RECHECK_MS;
    if (entry.trust === undefined || Date.now() - entry.checkedAt < interval) return entry;
    entry.recheck ??= (async () => {
      try {
        const trust = await readProviderTrust(this.deps.rest, provider);
        if (trust.fingerprint === entry.trust) return entry;
        if (this.entries.get(key) !== entry) return this.entries.get(key) ?? entry;
        this.deps.log.info(
          { provider: key },
          'provider CA bundle or initial access token changed; rebuilding',
        );
        this.deps.onTrouble?.(provider);
        return this.replace(key, entry.version, provider, trust);
      } catch (error) {
        // Secret gone or unreadable: a rebuild reports it on the provider and its clients.
        if (error instanceof ProviderNotReadyError && this.entries.get(key) === entry) {
          return this.replace(key, entry.version, provider);
        }
        this.deps.log.warn({ provider: key, err: errorMessage(error) }, 'provider Secrets not re-read');
        return entry;
      } finally {
        entry.checkedAt = Date.now();
        entry.recheck = undefined;
      }
    })();
    return entry.recheck;
  }

  /** Builds a new client for the provider, closing the one it replaces. */
  private replace(key: string, version: string, provider: AnyProvider, trust?: Trust): Entry {
    const old = this.entries.get(key);
    if (old) void old.resolved.then((r) => r.client.close()).catch(() => undefined);
    const entry = { version, checkedAt: Date.now() } as Entry;
    entry.resolved = this.build(key, provider, entry, trust);
    this.entries.set(key, entry);
    // A failed discovery must not stick: the next reconcile tries again (the queue backs off).
    entry.resolved.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry;
  }

  /**
   * For deleting a client: namespace deletion removes the OidcProvider at the same time as the
   * OidcClient, yet the RFC 7592 DELETE needs only the registration_client_uri and the token.
   * So a provider that is gone still serves from its last resolved client, or from a bare client
   * (default trust store, management calls only to the origin recorded on the client's status)
   * when this process never resolved it.
   */
  async resolveForDeletion(cr: OidcClient, issuer: string | undefined): Promise<ResolvedProvider> {
    try {
      return await this.resolve(cr);
    } catch (error) {
      if (!(error instanceof ProviderNotReadyError) || error.reason !== 'ProviderNotFound') throw error;
      const { key } = providerKeyOf(cr);
      const origins = recordedOrigins(cr);
      const version = `gone:${origins.join(',')}`;
      const cached = this.entries.get(key);
      if (cached && (!cached.version.startsWith('gone:') || cached.version === version))
        return cached.resolved;
      if (cached) this.invalidate(key);
      const endpoints: ProviderEndpoints = {
        issuer: issuer ?? '',
        registrationEndpoint: '',
        source: 'explicit',
      };
      const labels = providerLabelsOf(cr);
      const client = new RegistrationClient({
        endpoints,
        managementOrigins: origins,
        requestTimeoutMs: this.deps.requestTimeoutMs,
        retries: this.deps.retries,
        registrationRetries: 0,
        observe: this.observer(labels),
        fence: this.deps.fence,
      });
      const resolved = Promise.resolve({ key, endpoints, client });
      this.entries.set(key, { version, resolved, checkedAt: Date.now() });
      return resolved;
    }
  }

  /** Drops the cached client (e.g. after the initial access token was rejected, to re-read it). */
  invalidate(key: string): void {
    const e = this.entries.get(key);
    this.entries.delete(key);
    if (e) void e.resolved.then((r) => r.client.close()).catch(() => undefined);
  }

  /**
   * A provider resource is gone and no OidcClient refers to it any more: close its connections and
   * drop its metric series, so deleted providers do not accumulate in memory.
   */
  release(key: string, labels: ProviderLabels): void {
    this.invalidate(key);
    this.deps.metrics?.release(labels);
  }

  private observer(labels: ProviderLabels): RequestObserver | undefined {
    const sink = this.deps.metrics;
    return sink ? (e) => sink.observe(labels, e) : undefined;
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.allSettled(all.map(async (e) => (await e.resolved).client.close()));
  }

  private async build(
    key: string,
    provider: AnyProvider,
    entry: Entry,
    known?: Trust,
  ): Promise<ResolvedProvider> {
    const spec = provider.spec;
    try {
      // Refuse bad origins before anything is fetched: an http origin next to https fails even
      // while discovery is down.
      checkOrigins(spec.registrationEndpoint || spec.issuerUrl, spec.managementOrigins ?? []);
      const trust = known ?? (await readProviderTrust(this.deps.rest, provider));
      entry.trust = trust.fingerprint;
      entry.checkedAt = Date.now();
      const { caPem, initialAccessToken } = trust;
      const endpoints = await discoverEndpoints({
        issuerUrl: spec.issuerUrl,
        registrationEndpoint: spec.registrationEndpoint,
        caPem,
        // The same per-request timeout as every other provider call (default 10 s × 4 attempts).
        requestTimeoutMs: this.deps.requestTimeoutMs,
        signal: this.deps.fence?.signal,
      });
      let client: TrustAwareClient;
      try {
        client = new TrustAwareClient(
          {
            endpoints,
            managementOrigins: spec.managementOrigins ?? [],
            caPem,
            initialAccessToken,
            maxConcurrentRequests: this.requestLimit(provider),
            observe: this.observer(labelsOfProvider(provider)),
            requestTimeoutMs: this.deps.requestTimeoutMs,
            retries: this.deps.retries,
            registrationRetries: 0,
            fence: this.deps.fence,
          },
          () => {
            if (this.entries.get(key) !== entry) return;
            this.deps.log.info(
              { provider: key },
              'provider refused our CA bundle or initial access token; re-reading',
            );
            this.invalidate(key);
            this.deps.onTrouble?.(provider);
          },
        );
      } catch (error) {
        if (!(error instanceof OriginConfigError)) throw error;
        throw new ProviderNotReadyError('ProviderInvalid', `spec.managementOrigins: ${error.message}`);
      }
      return { key, endpoints, client };
    } catch (error) {
      // The provider's own status is the health checker's (provider-health.ts); it re-checks now.
      this.deps.onTrouble?.(provider);
      throw error instanceof ProviderNotReadyError
        ? error
        : new ProviderNotReadyError('ProviderUnavailable', `provider ${key}: ${errorMessage(error)}`);
    }
  }

  /** spec.maxConcurrentRequests; a ClusterOidcProvider's is shared among shards. */
  private requestLimit(provider: AnyProvider): number {
    const max = provider.spec.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
    const share = this.deps.clusterShare;
    return provider.kind === 'ClusterOidcProvider' && share ? share(max) : max;
  }
}
