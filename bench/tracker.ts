// What the benchmark knows about the OidcClients and their Secrets, from watches (no polling
// lists: at 10,000 objects a list per second would load the apiserver being measured). Records when
// each object was first seen, first seen Ready and seen deleted, in the bench's own clock.
import {
  CoreV1Api,
  CustomObjectsApi,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
  type V1Secret,
} from '@kubernetes/client-node';
import type { OidcClient } from '../src/api/types.generated.js';

const GROUP = 'oidc.dcr-operator.dev';
const VERSION = 'v1alpha1';
const ROLE_LABEL = `${GROUP}/secret-role`;

export function isReady(cr: OidcClient): boolean {
  const ready = cr.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True' && cr.status?.observedGeneration === cr.metadata.generation;
}

export interface Counts {
  /** OidcClients seen so far (the apply's progress), and of them Ready, and deleted. */
  created: number;
  ready: number;
  deleted: number;
  /** Application ("credentials") and management ("registration") Secrets seen / deleted. */
  appSecrets: number;
  mgmtSecrets: number;
  secretsDeleted: number;
}

export class Tracker {
  readonly createdAt = new Map<string, number>();
  readonly readyAt = new Map<string, number>();
  readonly deletedAt = new Map<string, number>();
  readonly secretAt = new Map<string, { role: string; at: number }>();
  readonly secretDeletedAt = new Map<string, number>();
  private readonly informers: (Informer<KubernetesObject> & ObjectCache<KubernetesObject>)[] = [];
  /** Watch errors (the informer relists and goes on); reported, not fatal. */
  errors = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
  ) {}

  async start(): Promise<void> {
    const custom = this.kc.makeApiClient(CustomObjectsApi);
    const core = this.kc.makeApiClient(CoreV1Api);
    const ns = this.namespace;
    const clients = makeInformer<KubernetesObject>(
      this.kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${ns}/oidcclients`,
      () =>
        custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: 'oidcclients',
        }) as Promise<KubernetesListObject<KubernetesObject>>,
    );
    const seeClient = (obj: KubernetesObject) => {
      const name = obj.metadata?.name;
      if (!name) return;
      const now = Date.now();
      if (!this.createdAt.has(name)) this.createdAt.set(name, now);
      if (!this.readyAt.has(name) && isReady(obj as OidcClient)) this.readyAt.set(name, now);
    };
    clients.on('add', seeClient);
    clients.on('update', seeClient);
    clients.on('delete', (obj) => {
      const name = obj.metadata?.name;
      if (name && !this.deletedAt.has(name)) this.deletedAt.set(name, Date.now());
    });
    const secrets = makeInformer<KubernetesObject>(
      this.kc,
      `/api/v1/namespaces/${ns}/secrets`,
      () =>
        core.listNamespacedSecret({ namespace: ns, labelSelector: ROLE_LABEL }) as Promise<
          KubernetesListObject<KubernetesObject>
        >,
      ROLE_LABEL,
    );
    secrets.on('add', (obj) => {
      const name = obj.metadata?.name;
      if (!name || this.secretAt.has(name)) return;
      const role = (obj as V1Secret).metadata?.labels?.[ROLE_LABEL] ?? '?';
      this.secretAt.set(name, { role, at: Date.now() });
    });
    secrets.on('delete', (obj) => {
      const name = obj.metadata?.name;
      if (name && !this.secretDeletedAt.has(name)) this.secretDeletedAt.set(name, Date.now());
    });
    for (const informer of [clients, secrets]) {
      // The informer restarts its list and watch by itself after an error; count, do not stop.
      informer.on('error', () => {
        this.errors++;
        setTimeout(() => void informer.start().catch(() => undefined), 1_000);
      });
      await informer.start();
      this.informers.push(informer);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop().catch(() => undefined)));
  }

  counts(): Counts {
    let appSecrets = 0;
    let mgmtSecrets = 0;
    for (const s of this.secretAt.values()) {
      if (s.role === 'credentials') appSecrets++;
      else if (s.role === 'registration') mgmtSecrets++;
    }
    return {
      created: this.createdAt.size,
      ready: this.readyAt.size,
      deleted: this.deletedAt.size,
      appSecrets,
      mgmtSecrets,
      secretsDeleted: this.secretDeletedAt.size,
    };
  }

  /** The time the last of `role`'s Secrets was first seen, or undefined while fewer than `count`. */
  allSecretsAt(role: string, count: number): number | undefined {
    let n = 0;
    let last = 0;
    for (const s of this.secretAt.values()) {
      if (s.role !== role) continue;
      n++;
      last = Math.max(last, s.at);
    }
    return n >= count ? last : undefined;
  }

  /** Per OidcClient: first seen Ready − first seen (ms), for those seen both ways. */
  latencies(): number[] {
    const out: number[] = [];
    for (const [name, created] of this.createdAt) {
      const ready = this.readyAt.get(name);
      if (ready !== undefined) out.push(ready - created);
    }
    return out;
  }
}
