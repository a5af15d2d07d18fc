// The end-of-run invariants, checked in the provider's own store and in the apiserver. Pure over a
// snapshot (collected by collectSnapshot), except the token-endpoint check which asks the server.
import type { V1Secret } from '@kubernetes/client-node';
import type { OidcClient } from '../../../src/api/types.generated.js';
import type { KubeRest } from '../../../src/kube/rest.js';
import { GROUP, VERSION } from '../oidc.js';
import type { RecordedRequest, StoredClient } from '../registration-server/types.js';
import type { ProxiedRequest } from './apiserver-proxy.js';
import type { ReplicaExit } from './operator-fleet.js';
import { isRegistrationPost, managedClientId } from './provider-faults.js';
import { type ChaosEvent, INTERRUPTIONS } from './timeline.js';
import { isReadyForGeneration, redirectUri } from './workload.js';

export interface KubeEvent {
  reason?: string;
  message?: string;
  type?: string;
  firstTimestamp?: string;
  lastTimestamp?: string;
  /** The operator replica (POD_NAME) that wrote it. */
  reportingInstance?: string;
  involvedObject: { name?: string; kind?: string };
}

export interface Snapshot {
  crs: OidcClient[];
  /** The operator's Secrets (managed-by label) in the namespace. */
  secrets: V1Secret[];
  events: KubeEvent[];
  store: StoredClient[];
}

export async function collectSnapshot(
  rest: KubeRest,
  namespace: string,
  store: () => Promise<StoredClient[]>,
): Promise<Snapshot> {
  const list = async <T>(path: string, query: Record<string, string> = {}) => {
    const items: T[] = [];
    let cont: string | undefined;
    do {
      const page = await rest.get<{ items: T[]; metadata: { continue?: string } }>(path, {
        ...query,
        limit: 500,
        continue: cont,
      });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
    } while (cont);
    return items;
  };
  const [crs, secrets, events, stored] = await Promise.all([
    list<OidcClient>(`/apis/${GROUP}/${VERSION}/namespaces/${namespace}/oidcclients`),
    list<V1Secret>(`/api/v1/namespaces/${namespace}/secrets`, {
      labelSelector: 'app.kubernetes.io/managed-by=oidc-client-operator',
    }),
    list<KubeEvent>(`/api/v1/namespaces/${namespace}/events`),
    store(),
  ]);
  return { crs, secrets, events, store: stored };
}

export interface Expectation {
  /** OidcClients that must exist at the end, with the redirect URI revision they were last given. */
  present: Map<string, number>;
  /** OidcClients that were deleted during the run. */
  deleted: Set<string>;
}

export interface CheckContext {
  expect: Expectation;
  snapshot: Snapshot;
  /** Provider requests of the run (not those of the checks). */
  requests: readonly RecordedRequest[];
  /** Operator requests through the apiserver proxy. */
  apiRequests: readonly ProxiedRequest[];
  timeline: readonly ChaosEvent[];
  exits: readonly ReplicaExit[];
  /** How long the run took (chaos + settle), for the backoff budgets. */
  runMs: number;
  resyncMs: number;
  providerTimeoutMs: number;
  /** Every operator log line written during the run. */
  operatorLog: string;
  /** /healthz status of each running replica at the end. */
  health: Record<string, number>;
  /** client_id → result of a client_credentials request with the credentials in the app Secret. */
  tokenResults: Map<string, number>;
}

export interface InvariantResult {
  name: string;
  ok: boolean;
  detail: string;
  /** A few offending items, for the report. */
  examples?: string[];
}

export type OrphanCause = 'answer-lost' | 'sigkill' | 'apiserver-down' | 'operator-reported' | 'unexplained';

export interface Orphan {
  clientId: string;
  clientName: string;
  cause: OrphanCause;
  /** The registration POST that created it (seconds into the run are in the timeline). */
  postedAt?: number;
  evidence?: string;
  /**
   * For an unexplained orphan: what happened to its OidcClient, in order (provider requests with
   * faults, Events), and which client its management Secret names now.
   */
  history?: string[];
}

export interface PerClientFigures {
  max: number;
  avg: number;
  /** The client with the most, and its count. */
  worst: string;
  budget: number;
}

export interface CheckFigures {
  crs: number;
  orphanCount: number;
  ready: number;
  storeClients: number;
  orphans: Orphan[];
  orphansByCause: Record<string, number>;
  registrationRetriedEvents: number;
  orphanedClientEvents: number;
  providerRequestsByMethod: Record<string, number>;
  providerRequestsPerClient: Record<string, PerClientFigures>;
  unattributedProviderRequests: number;
  apiserverWritesPerClient: PerClientFigures & { byResource: Record<string, number> };
  tokenChecks: { ok: number; failed: number };
}

const MGMT_SUFFIX = '-oidc-registration';
const APP_SUFFIX = '-oidc-client';

function decoded(secret: V1Secret | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

function secretOwner(s: V1Secret): string | undefined {
  return s.metadata?.labels?.[`${GROUP}/client`];
}

/** Log text may hold no credential: every 20+ character token-like word is looked up. */
function leakedSecrets(log: string, secrets: Set<string>): number {
  let leaks = 0;
  for (const m of log.matchAll(/[A-Za-z0-9_~.+/=-]{20,}/g)) if (secrets.has(m[0])) leaks++;
  return leaks;
}

function perClient(counts: Map<string, number>, population: number, budget: number): PerClientFigures {
  let worst = '';
  let max = 0;
  let sum = 0;
  for (const [k, v] of counts) {
    sum += v;
    if (v > max) {
      max = v;
      worst = k;
    }
  }
  return { max, avg: population === 0 ? 0 : Number((sum / population).toFixed(2)), worst, budget };
}

/** The object an operator write was for, by the OidcClient's name; undefined for the Lease and such. */
export function writeTarget(r: ProxiedRequest): { resource: string; client: string } | undefined {
  const m = /^\/(?:api\/v1|apis\/[^/]+\/[^/]+)\/namespaces\/[^/]+\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(
    r.path,
  );
  if (!m?.[1]) return undefined;
  const resource = m[3] ? `${m[1]}/${m[3]}` : m[1];
  const name = m[2] ?? r.name;
  if (!name) return undefined;
  if (m[1] === 'oidcclients') return { resource, client: name };
  if (m[1] === 'secrets') {
    for (const suffix of [MGMT_SUFFIX, APP_SUFFIX]) {
      if (name.endsWith(suffix)) return { resource, client: name.slice(0, -suffix.length) };
    }
    return undefined;
  }
  // Event names are "<object name>.<random hex>".
  if (m[1] === 'events') return { resource, client: name.replace(/\.[0-9a-f]+$/, '') };
  return undefined;
}

/** Attempts a reconcile makes in `ms` when it fails every time: exponential backoff 0.5 s .. 5 min. */
function backoffAttempts(ms: number): number {
  return Math.ceil(Math.log2(Math.max(2, ms / 500))) + Math.ceil(ms / 300_000);
}

export function checkInvariants(ctx: CheckContext): { results: InvariantResult[]; figures: CheckFigures } {
  const { snapshot: snap, expect } = ctx;
  const results: InvariantResult[] = [];
  const add = (name: string, bad: string[], okDetail: string, badDetail = `${bad.length} failing`) =>
    results.push({
      name,
      ok: bad.length === 0,
      detail: bad.length === 0 ? okDetail : badDetail,
      examples: bad.slice(0, 8),
    });

  const crByName = new Map(snap.crs.map((c) => [c.metadata.name as string, c]));
  const secretByName = new Map(snap.secrets.map((s) => [s.metadata?.name as string, s]));
  const storeById = new Map(snap.store.map((c) => [c.clientId, c]));

  // 1. The resources are what the user left: everything applied and not deleted exists, the rest is gone.
  const missing = [...expect.present.keys()].filter((n) => !crByName.has(n));
  const lingering = [...expect.deleted].filter((n) => crByName.has(n));
  add(
    'resources match what was applied',
    [...missing.map((n) => `${n} missing`), ...lingering.map((n) => `${n} deleted but still there`)],
    `${expect.present.size} present, ${expect.deleted.size} deleted and gone`,
  );

  // 2. Every OidcClient is Ready for its current generation.
  const notReady = snap.crs
    .filter((c) => !isReadyForGeneration(c))
    .map((c) => {
      const r = c.status?.conditions?.find((x) => x.type === 'Ready');
      return `${c.metadata.name}: Ready=${r?.status ?? 'none'} ${r?.reason ?? ''} gen ${c.metadata.generation}/${c.status?.observedGeneration ?? '-'} ${r?.message?.slice(0, 120) ?? ''}`;
    });
  add('every OidcClient Ready', notReady, `${snap.crs.length} Ready for their generation`);

  // 3. Exactly one live client per OidcClient: the management Secret's client_id exists at the
  // provider, and the app Secret and status name the same client with the stored secret.
  const referenced = new Map<string, string[]>();
  const oneClient: string[] = [];
  for (const cr of snap.crs) {
    const name = cr.metadata.name as string;
    const mgmt = secretByName.get(`${name}${MGMT_SUFFIX}`);
    const app = secretByName.get(`${name}${APP_SUFFIX}`);
    const id = decoded(mgmt, 'client_id');
    if (!id) {
      oneClient.push(`${name}: no client_id in the management Secret`);
      continue;
    }
    referenced.set(id, [...(referenced.get(id) ?? []), name]);
    const stored = storeById.get(id);
    if (!stored) oneClient.push(`${name}: client ${id} is not at the provider`);
    else if (stored.metadata.client_name !== name)
      oneClient.push(`${name}: client ${id} is named ${String(stored.metadata.client_name)}`);
    if (decoded(app, 'client_id') !== id)
      oneClient.push(
        `${name}: app Secret names ${decoded(app, 'client_id') ?? 'nothing'}, management Secret ${id}`,
      );
    if (stored && decoded(app, 'client_secret') !== stored.metadata.client_secret)
      oneClient.push(`${name}: app Secret client_secret differs from the provider's`);
    if (cr.status?.clientId !== id)
      oneClient.push(`${name}: status.clientId ${cr.status?.clientId ?? '-'} != ${id}`);
    const rev = expect.present.get(name);
    const uris = stored?.metadata.redirect_uris;
    if (stored && rev !== undefined && JSON.stringify(uris) !== JSON.stringify([redirectUri(name, rev)]))
      oneClient.push(`${name}: provider has redirect_uris ${JSON.stringify(uris)}, spec revision ${rev}`);
  }
  add(
    'exactly one live client per OidcClient, matching its spec',
    oneClient,
    `${snap.crs.length} OidcClients, each with its client at the provider`,
  );

  // 4. No client is shared by two OidcClients.
  const shared = [...referenced]
    .filter(([, names]) => names.length > 1)
    .map(([id, names]) => `${id}: ${names.join(', ')}`);
  add('duplicates (a client referenced by two OidcClients) = 0', shared, '0 duplicates');

  // 5. No Secret points at a deleted client, and no Secret outlives its OidcClient.
  const dangling: string[] = [];
  for (const s of snap.secrets) {
    const owner = secretOwner(s);
    const name = s.metadata?.name as string;
    if (owner && !crByName.has(owner)) dangling.push(`${name}: its OidcClient ${owner} is gone`);
    const id = decoded(s, 'client_id');
    if (id && !storeById.has(id)) dangling.push(`${name}: client ${id} does not exist at the provider`);
  }
  add('no Secret points at a deleted client', dangling, `${snap.secrets.length} Secrets checked`);

  // 6. Orphans: clients nobody references. Allowed only where the registration's answer could
  // not be stored (lost answer, SIGKILL or apiserver outage right after the POST).
  const nameById = new Map<string, string>();
  const postById = new Map<string, RecordedRequest>();
  for (const r of ctx.requests) {
    if (r.clientId) {
      postById.set(r.clientId, r);
      if (r.clientName) nameById.set(r.clientId, r.clientName);
    }
  }
  for (const c of snap.store)
    if (typeof c.metadata.client_name === 'string') nameById.set(c.clientId, c.metadata.client_name);
  const reported = snap.events.filter(
    (e) => e.reason === 'OrphanedClient' || e.reason === 'DeletionAbandoned',
  );
  const window = ctx.providerTimeoutMs + 15_000;
  const orphans: Orphan[] = [];
  for (const c of snap.store) {
    if (referenced.has(c.clientId)) continue;
    const post = postById.get(c.clientId);
    const o: Orphan = {
      clientId: c.clientId,
      clientName: nameById.get(c.clientId) ?? '?',
      cause: 'unexplained',
    };
    if (post) o.postedAt = post.at;
    const interrupt = post
      ? ctx.timeline.find(
          (e) =>
            INTERRUPTIONS.has(e.kind) &&
            e.at >= post.at - 500 &&
            e.at <= (post.answeredAt ?? post.at) + window,
        )
      : undefined;
    if (post?.fault?.startsWith('swallow')) {
      o.cause = 'answer-lost';
      o.evidence = post.fault;
    } else if (interrupt) {
      o.cause = interrupt.kind === 'apiserver-down' ? 'apiserver-down' : 'sigkill';
      o.evidence = `${interrupt.kind} ${((interrupt.at - (post?.at ?? 0)) / 1000).toFixed(1)} s after the POST: ${interrupt.detail}`;
    } else {
      const e = reported.find((ev) => ev.message?.includes(c.clientId));
      if (e) {
        o.cause = 'operator-reported';
        o.evidence = `${e.reason}: ${e.message?.slice(0, 160)}`;
      } else {
        // Faulted management calls for this client, e.g. an HTML 404 taken for "client gone".
        const faulted = ctx.requests
          .filter((r) => r.fault && managedClientId(r.path) === c.clientId)
          .map((r) => `${r.method} ${r.status} [${r.fault}]`);
        o.evidence = post
          ? `POST at ${new Date(post.at).toISOString()} answered ${post.status}${post.fault ? ` (${post.fault})` : ''}, no interruption within ${window / 1000} s`
          : 'no registration POST recorded';
        if (faulted.length > 0) o.evidence += `; then ${faulted.join(', ')}`;
      }
    }
    orphans.push(o);
  }
  const t0 = ctx.requests[0]?.at ?? 0;
  const at = (t: number) => `${((t - t0) / 1000).toFixed(1)}s`;
  for (const o of orphans) {
    if (o.cause !== 'unexplained') continue;
    const lines: { t: number; line: string }[] = [];
    for (const r of ctx.requests) {
      const id = managedClientId(r.path);
      const name = id ? nameById.get(id) : isRegistrationPost(r.method, r.path) ? r.clientName : undefined;
      if (name !== o.clientName) continue;
      const client = id ?? r.clientId ?? '';
      lines.push({
        t: r.at,
        line: `${at(r.at)} ${r.method} ${client.slice(0, 8)} -> ${r.status || 'no answer'}${r.fault ? ` [${r.fault}]` : ''}`,
      });
    }
    for (const e of snap.events) {
      if (e.involvedObject.name !== o.clientName) continue;
      const t = Date.parse(e.lastTimestamp ?? e.firstTimestamp ?? '') || 0;
      lines.push({
        t,
        line: `${t ? at(t) : '?'} Event ${e.reason} by ${e.reportingInstance ?? '?'}: ${e.message?.slice(0, 140)}`,
      });
    }
    const now = [...referenced].find(([, names]) => names.includes(o.clientName))?.[0];
    o.history = [
      ...lines.sort((a, b) => a.t - b.t).map((l) => l.line),
      `management Secret now names ${now ?? 'no client'}`,
    ];
  }
  const orphansByCause: Record<string, number> = {};
  for (const o of orphans) orphansByCause[o.cause] = (orphansByCause[o.cause] ?? 0) + 1;
  const unexplained = orphans.filter((o) => o.cause === 'unexplained');
  add(
    'orphans only inside the POST-to-persist window',
    unexplained.map((o) => `${o.clientId} (${o.clientName}): ${o.evidence}`),
    `${orphans.length} orphans, all explained: ${JSON.stringify(orphansByCause)}`,
    `${unexplained.length} of ${orphans.length} orphans unexplained`,
  );

  // 7. Every app Secret's credentials authenticate at the token endpoint.
  let tokenOk = 0;
  const tokenBad: string[] = [];
  for (const [id, status] of ctx.tokenResults) {
    if (status === 200) tokenOk++;
    else tokenBad.push(`${id} (${nameById.get(id) ?? '?'}): token endpoint answered ${status}`);
  }
  add(
    "every Secret's credentials authenticate (client_credentials)",
    tokenBad,
    `${tokenOk} token requests answered 200`,
  );

  // 8. Provider requests per OidcClient by method, within the backoff budget.
  const attempts = backoffAttempts(ctx.runMs);
  const resyncs = Math.ceil(ctx.runMs / ctx.resyncMs);
  // Each attempt makes up to 4 tries of one call (3 retries); faults and kills add a few more.
  const budget = 4 * (attempts + resyncs + 6);
  const byMethod = new Map<string, Map<string, number>>();
  const totals: Record<string, number> = {};
  let unattributed = 0;
  for (const r of ctx.requests) {
    let method = r.method;
    let name: string | undefined;
    if (isRegistrationPost(r.method, r.path)) name = r.clientName;
    else {
      const id = managedClientId(r.path);
      if (id) name = nameById.get(id);
      else method = `${r.method} ${r.path === '/token' ? 'token' : 'other'}`;
    }
    totals[method] = (totals[method] ?? 0) + 1;
    if (!['POST', 'GET', 'PUT', 'DELETE'].includes(method)) continue;
    if (!name) {
      unattributed++;
      continue;
    }
    const m = byMethod.get(method) ?? new Map<string, number>();
    m.set(name, (m.get(name) ?? 0) + 1);
    byMethod.set(method, m);
  }
  const population = expect.present.size + expect.deleted.size;
  const perMethod: Record<string, PerClientFigures> = {};
  const overBudget: string[] = [];
  for (const [method, counts] of byMethod) {
    perMethod[method] = perClient(counts, population, budget);
    for (const [name, n] of counts)
      if (n > budget) overBudget.push(`${name}: ${n} ${method} (budget ${budget})`);
  }
  add(
    'provider requests per client within the backoff budget',
    overBudget,
    `max per client ${Object.entries(perMethod)
      .map(([m, f]) => `${m} ${f.max}`)
      .join(', ')} (budget ${budget})`,
  );

  // 9. apiserver writes per OidcClient (the operator's, through the proxy).
  const writes = new Map<string, number>();
  const byResource: Record<string, number> = {};
  for (const r of ctx.apiRequests) {
    if (r.method === 'GET' || r.injected) continue;
    const t = writeTarget(r);
    if (!t) continue;
    const key = `${r.method} ${t.resource}`;
    byResource[key] = (byResource[key] ?? 0) + 1;
    writes.set(t.client, (writes.get(t.client) ?? 0) + 1);
  }
  const writeBudget = 8 * (attempts + 6) + 2 * resyncs;
  const writeFigures = { ...perClient(writes, population, writeBudget), byResource };
  const writeHogs = [...writes]
    .filter(([, n]) => n > writeBudget)
    .map(([c, n]) => `${c}: ${n} writes (budget ${writeBudget})`);
  add(
    'apiserver writes per client within budget',
    writeHogs,
    `max ${writeFigures.max}, avg ${writeFigures.avg} per client (budget ${writeBudget})`,
  );

  // 10. The operator never crashed, was healthy at the end, stopped within the grace period on
  // SIGTERM, and logged no credential.
  const crashes = ctx.exits
    .filter((e) => e.cause === 'crash' || e.cause === 'stop-timeout')
    .map((e) => `${e.identity} exited code ${e.code} signal ${e.signal}`);
  const unhealthy = Object.entries(ctx.health)
    .filter(([, s]) => s !== 200)
    .map(([id, s]) => `${id}: /healthz ${s}`);
  if (Object.keys(ctx.health).length === 0) unhealthy.push('no replica running');
  add(
    'operator never crashed, is healthy and stops on SIGTERM',
    [...crashes, ...unhealthy],
    `${Object.keys(ctx.health).length} replicas healthy, exits: ${ctx.exits.map((e) => e.cause).join(', ') || 'none'}`,
  );
  const credentials = new Set<string>();
  for (const c of snap.store)
    if (typeof c.metadata.client_secret === 'string') credentials.add(c.metadata.client_secret);
  for (const s of snap.secrets) {
    for (const key of ['client_secret', 'registration_access_token']) {
      const v = decoded(s, key);
      if (v) credentials.add(v);
    }
  }
  const leaks = leakedSecrets(ctx.operatorLog, credentials);
  add(
    'no credential in the operator log',
    leaks > 0 ? [`${leaks} occurrences of a client secret or registration access token`] : [],
    `${ctx.operatorLog.split('\n').length} log lines scanned`,
  );

  const count = (reason: string) => snap.events.filter((e) => e.reason === reason).length;
  return {
    results,
    figures: {
      crs: snap.crs.length,
      ready: snap.crs.filter(isReadyForGeneration).length,
      storeClients: snap.store.length,
      orphanCount: orphans.length,
      // Unexplained ones first: the report keeps only the first few hundred.
      orphans: [...orphans].sort(
        (a, b) => Number(b.cause === 'unexplained') - Number(a.cause === 'unexplained'),
      ),
      orphansByCause,
      registrationRetriedEvents: count('RegistrationRetried'),
      orphanedClientEvents: count('OrphanedClient'),
      providerRequestsByMethod: totals,
      providerRequestsPerClient: perMethod,
      unattributedProviderRequests: unattributed,
      apiserverWritesPerClient: writeFigures,
      tokenChecks: { ok: tokenOk, failed: tokenBad.length },
    },
  };
}

/** client_credentials with each app Secret's credentials; client_id → HTTP status (0 = no answer). */
export async function checkTokens(
  secrets: readonly V1Secret[],
  tokenEndpoint: string,
  concurrency = 8,
): Promise<Map<string, number>> {
  const apps = secrets.filter((s) => s.metadata?.labels?.[`${GROUP}/secret-role`] === 'credentials');
  const out = new Map<string, number>();
  const queue = [...apps];
  const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        const id = decoded(s, 'client_id') ?? '';
        const secret = decoded(s, 'client_secret') ?? '';
        const status = await fetch(tokenEndpoint, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: 'grant_type=client_credentials',
          signal: AbortSignal.timeout(10_000),
        })
          .then(async (res) => {
            await res.body?.cancel();
            return res.status;
          })
          .catch(() => 0);
        out.set(id, status);
      }
    }),
  );
  return out;
}
