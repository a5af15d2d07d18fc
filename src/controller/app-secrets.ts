// The application Secret: created, or brought back in line, from the stored registration. Labels
// and annotations others add are kept; a Secret of that name owned by someone else is never touched.
import type { V1Secret } from '@kubernetes/client-node';
import type { OidcClient } from '../api/types.generated.js';
import type { CacheReader } from '../kube/informer.js';
import { isKubeStatus, type KubeRest } from '../kube/rest.js';
import { readSecret, secretPath } from '../kube/secrets.js';
import { type AppSecretInput, appSecretValues, mergedMetadata } from './app-secret-template.js';
import { createdAfter, neverRegistered } from './client-metadata.js';
import type { ForeignSecrets } from './foreign-secrets.js';
import { appSecretName } from './names.js';
import { SecretConflictError } from './outcome.js';
import { appSecretMatches, desiredAppSecret, encodeData, isOwnedBy } from './secrets.js';

export type AppSecretChange = 'unchanged' | 'created' | 'updated';

export class AppSecrets {
  constructor(
    private readonly rest: KubeRest,
    private readonly cache: CacheReader<V1Secret>,
    /** Names of Secrets we do not manage: a new client's check needs no GET. */
    private readonly foreign?: ForeignSecrets,
  ) {}

  /**
   * Throws SecretConflictError when a Secret of that name exists and is not ours, and
   * SecretTemplateError (before any write) when spec.secretTemplate cannot be rendered.
   */
  async ensure(cr: OidcClient, input: AppSecretInput): Promise<AppSecretChange> {
    const name = appSecretName(cr);
    const ns = cr.metadata.namespace as string;
    const desired = desiredAppSecret(cr, name, encodeData(appSecretValues(cr, input)));
    const cached = this.cache.get(`${ns}/${name}`);
    if (cached && !isOwnedBy(cached, cr)) throw new SecretConflictError(name);
    if (cached && appSecretMatches(cached, desired)) return 'unchanged';
    if (!cached) {
      try {
        await this.rest.create(`/api/v1/namespaces/${ns}/secrets`, desired);
        return 'created';
      } catch (error) {
        if (!isKubeStatus(error, 409)) throw error;
      }
    }
    const current = cached ?? (await this.rest.get<V1Secret>(secretPath(ns, name)));
    if (!isOwnedBy(current, cr)) throw new SecretConflictError(name);
    // The cache lagged (e.g. our own replacement of the Secret): it may be right already.
    if (!cached && appSecretMatches(current, desired)) return 'unchanged';
    const next: V1Secret = {
      ...current,
      metadata: { ...current.metadata, ...mergedMetadata(current, desired) },
      type: desired.type,
      data: desired.data,
    };
    if ((current.type ?? 'Opaque') !== desired.type) {
      // The type of a Secret cannot change: replace this exact Secret (uid and version as read).
      await this.rest.delete(secretPath(ns, name), {
        preconditions: { uid: current.metadata?.uid, resourceVersion: current.metadata?.resourceVersion },
      });
      const {
        resourceVersion: _rv,
        uid: _uid,
        creationTimestamp: _ct,
        managedFields: _mf,
        ...meta
      } = next.metadata ?? {};
      await this.rest.create(`/api/v1/namespaces/${ns}/secrets`, { ...next, metadata: meta });
      return 'updated';
    }
    await this.rest.replace(secretPath(ns, name), next);
    return 'updated';
  }

  /** Removes a Secret this OidcClient used before (after spec.secretName changed); others' stay. */
  async deleteIfOwned(cr: OidcClient, name: string): Promise<void> {
    const ns = cr.metadata.namespace as string;
    const existing = this.cache.get(`${ns}/${name}`) ?? (await readSecret(this.rest, ns, name));
    if (!existing || !isOwnedBy(existing, cr)) return;
    try {
      await this.rest.delete(secretPath(ns, name));
    } catch (error) {
      if (!isKubeStatus(error, 404)) throw error;
    }
  }

  /** Before registering: throws SecretConflictError when the name is taken by a Secret not ours. */
  async assertNoConflict(cr: OidcClient): Promise<void> {
    const name = appSecretName(cr);
    const ns = cr.metadata.namespace as string;
    const cached = this.cache.get(`${ns}/${name}`);
    if (
      !cached &&
      this.foreign &&
      neverRegistered(cr) &&
      !(await this.foreign.has(ns, name, createdAfter(cr)))
    )
      return;
    const existing = cached ?? (await readSecret(this.rest, ns, name));
    if (existing && !isOwnedBy(existing, cr)) throw new SecretConflictError(name);
  }
}
