// Where the apiserver is and how to authenticate to it: from a kubeconfig file, $KUBECONFIG,
// ~/.kube/config or the pod's service account, in the same order as client-go and client-node.
// Read here rather than through client-node's KubeConfig because importing client-node loads its
// whole generated API client (~80 MB of RSS, more than the rest of the operator together). The
// common credentials (bearer token, token file, client certificate, basic) are handled here; for
// the rest (exec and auth-provider plugins, proxies, impersonation) client-node is loaded on demand.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';

/** TLS material for the connection to the apiserver (node:https options). */
export interface KubeTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

export interface KubeCredentials {
  /** Authorization header value, if the user authenticates with one. */
  authorization?: string;
  /** Further headers (impersonation). */
  headers?: Record<string, string>;
  /** A new object whenever the material changes (a rotated exec client certificate): connections are rebuilt. */
  tls: KubeTls;
  /** A custom agent (proxies through client-node); connections then are its business. */
  agent?: unknown;
}

/** A resolved kubeconfig context: everything KubeRest needs. */
export interface KubeConnection {
  /** Base URL without a trailing slash, e.g. https://10.0.0.1:443. */
  server: string;
  /** The context's default namespace, if any. */
  namespace?: string;
  /** Credentials for the next request; cheap (cached), re-read where they can rotate. */
  credentials(): Promise<KubeCredentials>;
}

/** client-node's Cluster, the shape every source is normalised to. */
export interface ClusterEntry {
  server: string;
  caData?: string;
  caFile?: string;
  skipTLSVerify?: boolean;
  tlsServerName?: string;
  proxyUrl?: string;
}

/** client-node's User; exec/authProvider/impersonation are only passed on to client-node. */
export interface UserEntry {
  token?: string;
  tokenFile?: string;
  certData?: string;
  certFile?: string;
  keyData?: string;
  keyFile?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  authProvider?: { name?: string; config?: Record<string, string> };
  impersonateUser?: string;
}

export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Service account tokens rotate (bound tokens expire after an hour): re-read like client-go does. */
const TOKEN_FILE_TTL_MS = 60_000;

/** Either a kubeconfig path, or a client-node KubeConfig (tests build those), or the default chain. */
export type KubeConfigSource = string | KubeConfig | KubeConnection | undefined;

export async function loadKubeConnection(source?: KubeConfigSource): Promise<KubeConnection> {
  if (typeof source === 'object') return loadKubeConnectionSync(source);
  if (source) return fromFiles([source]);
  const env = process.env.KUBECONFIG;
  if (env) {
    const files = env.split(delimiter).filter(Boolean);
    if (files.length > 0) return fromFiles(files);
  }
  const home = join(homedir(), '.kube', 'config');
  if (exists(home)) return fromFiles([home]);
  if (exists(join(SA_DIR, 'token'))) return inCluster();
  throw new KubeConfigError(
    'no kubeconfig: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config or run in a pod with a service account',
  );
}

/** For constructors: a resolved connection as is, a client-node KubeConfig converted. */
export function loadKubeConnectionSync(source: KubeConnection | KubeConfig): KubeConnection {
  return 'credentials' in source ? source : fromClientNode(source);
}

/** The pod's service account: its token file (re-read), CA and namespace. */
export function inCluster(dir = SA_DIR, tokenTtlMs = TOKEN_FILE_TTL_MS): KubeConnection {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new KubeConfigError('KUBERNETES_SERVICE_HOST/PORT are not set: not in a pod');
  const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
  const server = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const namespace = readOptional(join(dir, 'namespace'))?.trim();
  return native(
    { server, caFile: join(dir, 'ca.crt') },
    { tokenFile: join(dir, 'token') },
    namespace,
    () => Promise.reject(new KubeConfigError('unreachable')),
    tokenTtlMs,
  );
}

// ---------------------------------------------------------------- kubeconfig files

interface RawConfig {
  clusters?: { name?: string; cluster?: Record<string, unknown> }[];
  users?: { name?: string; user?: Record<string, unknown> }[];
  contexts?: { name?: string; context?: { cluster?: string; user?: string; namespace?: string } }[];
  'current-context'?: string;
}

/** Files merged like $KUBECONFIG: the first file that defines a name (or the current context) wins. */
async function fromFiles(files: string[]): Promise<KubeConnection> {
  const merged: Required<Omit<RawConfig, 'current-context'>> & { current?: string } = {
    clusters: [],
    users: [],
    contexts: [],
  };
  const seen = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      // Missing files in $KUBECONFIG are skipped by kubectl too; an explicit single path is not.
      if (files.length > 1 && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new KubeConfigError(`cannot read kubeconfig ${file}: ${(error as Error).message}`);
    }
    const raw = await parseKubeconfig(text, file);
    const dir = dirname(file);
    const first = (kind: string, name: string | undefined) => {
      const id = `${kind}/${name}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    };
    // Relative certificate and token paths are relative to the file that names them.
    for (const c of raw.clusters ?? [])
      if (first('cluster', c.name)) merged.clusters.push({ ...c, cluster: absolutePaths(c.cluster, dir) });
    for (const u of raw.users ?? [])
      if (first('user', u.name)) merged.users.push({ ...u, user: absolutePaths(u.user, dir) });
    for (const c of raw.contexts ?? []) if (first('context', c.name)) merged.contexts.push(c);
    merged.current ??= raw['current-context'] || undefined;
  }
  const contextName = merged.current;
  if (!contextName) throw new KubeConfigError(`kubeconfig ${files.join(delimiter)}: no current-context`);
  const context = merged.contexts.find((c) => c.name === contextName)?.context;
  if (!context) throw new KubeConfigError(`kubeconfig: context "${contextName}" not found`);
  const rawCluster = merged.clusters.find((c) => c.name === context.cluster)?.cluster;
  if (!rawCluster) throw new KubeConfigError(`kubeconfig: cluster "${context.cluster}" not found`);
  const rawUser = merged.users.find((u) => u.name === context.user)?.user ?? {};
  const fallback = async () => {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(files[0] as string);
    for (const f of files.slice(1)) {
      const more = new KubeConfig();
      more.loadFromFile(f);
      kc.mergeConfig(more, true);
    }
    kc.setCurrentContext(contextName);
    return kc;
  };
  return native(toCluster(rawCluster), toUser(rawUser), context.namespace, fallback);
}

async function parseKubeconfig(text: string, file: string): Promise<RawConfig> {
  let parsed: unknown;
  try {
    // Most kubeconfigs are YAML; the yaml module is loaded only for them.
    parsed = text.trimStart().startsWith('{') ? JSON.parse(text) : (await import('yaml')).parse(text);
  } catch (error) {
    throw new KubeConfigError(`kubeconfig ${file} is not valid YAML: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new KubeConfigError(`kubeconfig ${file} is empty`);
  return parsed as RawConfig;
}

const PATH_FIELDS = ['certificate-authority', 'client-certificate', 'client-key', 'tokenFile'];

function absolutePaths(
  body: Record<string, unknown> | undefined,
  dir: string,
): Record<string, unknown> | undefined {
  if (!body) return body;
  const fixed: Record<string, unknown> = { ...body };
  for (const f of PATH_FIELDS) {
    const v = fixed[f];
    if (typeof v === 'string' && v !== '' && !isAbsolute(v)) fixed[f] = join(dir, v);
  }
  return fixed;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function toCluster(c: Record<string, unknown>): ClusterEntry {
  const server = str(c.server);
  if (!server) throw new KubeConfigError('kubeconfig: the cluster has no server');
  return {
    server,
    caData: str(c['certificate-authority-data']),
    caFile: str(c['certificate-authority']),
    skipTLSVerify: c['insecure-skip-tls-verify'] === true,
    tlsServerName: str(c['tls-server-name']),
    proxyUrl: str(c['proxy-url']),
  };
}

function toUser(u: Record<string, unknown>): UserEntry {
  return {
    token: str(u.token),
    tokenFile: str(u.tokenFile),
    certData: str(u['client-certificate-data']),
    certFile: str(u['client-certificate']),
    keyData: str(u['client-key-data']),
    keyFile: str(u['client-key']),
    username: str(u.username),
    password: str(u.password),
    exec: u.exec ?? undefined,
    authProvider: (u['auth-provider'] as UserEntry['authProvider']) ?? undefined,
    impersonateUser: str(u.as),
  };
}

// ---------------------------------------------------------------- client-node KubeConfig objects

function fromClientNode(kc: KubeConfig): KubeConnection {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeConfigError('kubeconfig has no current cluster');
  const user = (kc.getCurrentUser() ?? {}) as UserEntry;
  const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return native(cluster, user, namespace, async () => kc);
}

// ---------------------------------------------------------------- credentials

/** A user that needs client-node: plugins (other than its in-cluster token file), proxies, impersonation. */
function needsClientNode(cluster: ClusterEntry, user: UserEntry): boolean {
  const provider = user.authProvider;
  const tokenFileProvider = provider?.name === 'tokenFile' && !!provider.config?.tokenFile;
  return !!user.exec || (!!provider && !tokenFileProvider) || !!cluster.proxyUrl || !!user.impersonateUser;
}

function native(
  cluster: ClusterEntry,
  user: UserEntry,
  namespace: string | undefined,
  clientNode: () => Promise<KubeConfig>,
  tokenTtlMs = TOKEN_FILE_TTL_MS,
): KubeConnection {
  const server = cluster.server.replace(/\/+$/, '');
  if (needsClientNode(cluster, user)) return viaClientNode(server, namespace, clientNode);
  const tls: KubeTls = {
    ca: material(cluster.caFile, cluster.caData),
    cert: material(user.certFile, user.certData),
    key: material(user.keyFile, user.keyData),
    rejectUnauthorized: !cluster.skipTLSVerify,
    ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
  };
  const tokenFile = user.tokenFile ?? user.authProvider?.config?.tokenFile;
  let token = user.token;
  let readAt = 0;
  const basic =
    user.username !== undefined
      ? `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}`
      : undefined;
  return {
    server,
    namespace,
    credentials: async () => {
      if (!user.token && tokenFile && Date.now() - readAt >= tokenTtlMs) {
        try {
          token = readFileSync(tokenFile, 'utf8').trim();
          readAt = Date.now();
        } catch (error) {
          // Keep the last token while the kubelet swaps the file; fail only without any.
          if (token === undefined)
            throw new KubeConfigError(`cannot read token file ${tokenFile}: ${(error as Error).message}`);
        }
      }
      return { authorization: token ? `Bearer ${token}` : basic, tls };
    },
  };
}

/** Exec and auth-provider plugins, proxies, impersonation: client-node computes the credentials. */
function viaClientNode(
  server: string,
  namespace: string | undefined,
  load: () => Promise<KubeConfig>,
): KubeConnection {
  let kc: Promise<KubeConfig> | undefined;
  let tls: KubeTls | undefined;
  return {
    server,
    namespace,
    credentials: async () => {
      kc ??= load();
      const config = await kc;
      const opts: {
        headers?: Record<string, string>;
        ca?: Buffer;
        cert?: Buffer;
        key?: Buffer;
        rejectUnauthorized?: boolean;
        servername?: string;
        agent?: unknown;
      } = {};
      await config.applyToHTTPSOptions(opts);
      const { Authorization, authorization, ...headers } = opts.headers ?? {};
      const next: KubeTls = {
        ca: opts.ca,
        cert: opts.cert === undefined ? undefined : Buffer.from(opts.cert),
        key: opts.key === undefined ? undefined : Buffer.from(opts.key),
        rejectUnauthorized: opts.rejectUnauthorized !== false,
        ...(opts.servername ? { servername: opts.servername } : {}),
      };
      // Same material: same object, so KubeRest keeps its connections.
      if (!tls || !sameTls(tls, next)) tls = next;
      const proxied = config.getCurrentCluster()?.proxyUrl ? opts.agent : undefined;
      return {
        authorization: Authorization ?? authorization,
        headers,
        tls,
        ...(proxied ? { agent: proxied } : {}),
      };
    },
  };
}

function sameTls(a: KubeTls, b: KubeTls): boolean {
  const eq = (x?: Buffer, y?: Buffer) => (x === undefined ? y === undefined : y !== undefined && x.equals(y));
  return (
    eq(a.ca, b.ca) &&
    eq(a.cert, b.cert) &&
    eq(a.key, b.key) &&
    a.rejectUnauthorized === b.rejectUnauthorized &&
    a.servername === b.servername
  );
}

function material(file?: string, data?: string): Buffer | undefined {
  if (file) {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new KubeConfigError(`cannot read ${file}: ${(error as Error).message}`);
    }
  }
  return data ? Buffer.from(data, 'base64') : undefined;
}

function exists(path: string): boolean {
  return existsSync(path);
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
