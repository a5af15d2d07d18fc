// Names of the Secrets in a namespace that the operator does not manage, for the "is this name
// taken by someone else?" check before a new client is registered. The informer caches only our
// own Secrets (label selected), so that check used to be a GET per Secret name: two per new client,
// a third of a new client's API requests. One metadata-only LIST of the other Secrets (names
// only, never their data) per namespace now answers it for the clients of a burst: a list is used
// for an OidcClient only when it was started in or after the second that OidcClient was created
// (so a Secret made before it, as a user would, is seen) and at most two seconds ago; concurrent
// asks share one request. A name taken after the list is still caught by the create (409): the
// registration is then undone (management Secret) or kept and reported as SecretConflict
// (application Secret), as when a GET was overtaken the same way.
import type { KubeRest } from '../kube/rest.js';
import { LABEL_MANAGED_BY, MANAGED_BY } from './names.js';

const FRESH_FOR_MS = 2_000;
const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

interface MetadataList {
  metadata?: { continue?: string };
  items?: { metadata?: { name?: string } }[];
}

export class ForeignSecrets {
  private readonly lists = new Map<string, { at: number; names: Promise<Set<string>> }>();

  constructor(private readonly rest: KubeRest) {}

  /**
   * Whether a Secret of this name that the operator does not manage exists, as of a list started
   * at or after `since` (epoch ms; the OidcClient's creation second) and at most two seconds ago.
   */
  async has(namespace: string, name: string, since = 0): Promise<boolean> {
    let entry = this.lists.get(namespace);
    if (!entry || entry.at < since || Date.now() - entry.at >= FRESH_FOR_MS) {
      entry = { at: Date.now(), names: this.list(namespace) };
      this.lists.set(namespace, entry);
      if (this.lists.size > 10_000) this.prune();
      // A failed list is not kept: the next ask tries again.
      entry.names.catch(() => {
        if (this.lists.get(namespace) === entry) this.lists.delete(namespace);
      });
    }
    return (await entry.names).has(name);
  }

  private async list(namespace: string): Promise<Set<string>> {
    const names = new Set<string>();
    let cont: string | undefined;
    do {
      const page = await this.rest.getAs<MetadataList>(
        `/api/v1/namespaces/${namespace}/secrets`,
        { labelSelector: `${LABEL_MANAGED_BY}!=${MANAGED_BY}`, limit: 500, continue: cont },
        METADATA_LIST,
      );
      for (const item of page.items ?? []) if (item.metadata?.name) names.add(item.metadata.name);
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return names;
  }

  private prune(): void {
    const now = Date.now();
    for (const [ns, e] of this.lists) if (now - e.at >= FRESH_FOR_MS) this.lists.delete(ns);
  }
}
