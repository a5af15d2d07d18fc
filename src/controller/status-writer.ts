// Writes the OidcClient status, and remembers what it wrote while the cache still shows the object
// that status replaced (so the next reconcile builds on what it wrote, not on a stale cache).

import { API_GROUP_VERSION } from '../api/schema.js';
import type { OidcClient, OidcClientStatus } from '../api/types.generated.js';
import { isKubeStatus, type KubeRest } from '../kube/rest.js';
import { clientKey } from './names.js';
import type { Outcome } from './outcome.js';
import { nextStatus, statusPatch } from './status.js';

export class StatusWriter {
  /** The status we wrote last, for as long as the cache still shows the object it replaced. */
  private readonly written = new Map<string, { supersededRv?: string; status: OidcClientStatus }>();

  constructor(private readonly rest: KubeRest) {}

  forget(key: string): void {
    this.written.delete(key);
  }

  /** The status to build on: ours while the cache lags behind our last write, else the cached one. */
  base(key: string, cr: OidcClient): OidcClientStatus {
    const mine = this.written.get(key);
    if (mine && mine.supersededRv === cr.metadata.resourceVersion) return mine.status;
    this.written.delete(key);
    return cr.status ?? {};
  }

  /** Writes the status an outcome leads to. */
  async write(
    cr: OidcClient,
    base: OidcClientStatus,
    status: OidcClientStatus,
    outcome: Outcome,
  ): Promise<void> {
    await this.patch(cr, base, nextStatus(cr, status, outcome, new Date().toISOString()));
  }

  /** Writes `next` unless it equals `base` (idle means idle). */
  async patch(cr: OidcClient, base: OidcClientStatus, next: OidcClientStatus): Promise<void> {
    const patch = statusPatch(base, next);
    if (!patch) return;
    try {
      await this.rest.patch(crPath(cr, '/status'), 'merge', patch);
      this.written.set(clientKey(cr), { supersededRv: cr.metadata.resourceVersion, status: next });
    } catch (error) {
      if (!isKubeStatus(error, 404)) throw error;
    }
  }
}

function crPath(cr: OidcClient, sub = ''): string {
  return `/apis/${API_GROUP_VERSION}/namespaces/${cr.metadata.namespace}/oidcclients/${cr.metadata.name}${sub}`;
}
