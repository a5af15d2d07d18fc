// An HTTPS proxy in front of kube-apiserver for chaos runs. The operator talks to it through its own
// kubeconfig; the proxy forwards every request with the admin identity and can do what a real
// apiserver does only rarely or slowly: expire watches (410 Gone, forcing a relist) and go away
// for a while (refused connections, reset streams). It also records every request the operator
// made, so apiserver writes can be counted per object.
import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { parse, stringify } from 'yaml';
import { makeTlsMaterial } from '../registration-server/tls.js';

export interface ProxiedRequest {
  at: number;
  method: string;
  /** Path without the query string. */
  path: string;
  watch: boolean;
  /** HTTP status; 0 when the proxy could not get an answer (outage, upstream reset). */
  status: number;
  /** metadata.name from the body of a POST (the object created), when it had one. */
  name?: string;
  /** Set when the proxy answered itself: 'expired' (410 in the stream), 'outage'. */
  injected?: string;
  /** When the exchange ended (answer finished or connection closed). */
  closedAt?: number;
}

export interface ApiserverProxy {
  url: string;
  /** A kubeconfig that points at the proxy (it trusts the proxy's own CA). */
  kubeconfigPath: string;
  readonly requests: ProxiedRequest[];
  /** Watch streams open right now. */
  readonly openWatches: number;
  /**
   * Ends every open watch; the next watch of each resource that resumes from a resourceVersion
   * (within windowMs) gets a 410 Expired event, as after an etcd compaction. Returns the number ended.
   */
  expireWatches(windowMs?: number): number;
  /** Refuses connections and resets open ones for `ms`, like an apiserver restart seen from a client. */
  outage(ms: number): Promise<void>;
  close(): Promise<void>;
}

interface AdminIdentity {
  server: string;
  ca: string;
  cert: string;
  key: string;
}

interface KubeconfigFile {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
}

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const MAX_NAME_PEEK = 256 * 1024;
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'host', 'authorization', 'transfer-encoding']);

async function readAdmin(kubeconfigPath: string): Promise<AdminIdentity> {
  const kc = parse(await readFile(kubeconfigPath, 'utf8')) as KubeconfigFile;
  const cluster = kc.clusters[0]?.cluster;
  const user = kc.users[0]?.user;
  if (!cluster || !user) throw new Error(`${kubeconfigPath}: no cluster or user`);
  return {
    server: cluster.server,
    ca: b64(cluster['certificate-authority-data']),
    cert: b64(user['client-certificate-data']),
    key: b64(user['client-key-data']),
  };
}

function expiredEvent(rv: string): string {
  return `${JSON.stringify({
    type: 'ERROR',
    object: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `too old resource version: ${rv}`,
      reason: 'Expired',
      code: 410,
    },
  })}\n`;
}

export async function startApiserverProxy(opts: {
  adminKubeconfigPath: string;
  /** Where to write the proxy's kubeconfig. */
  kubeconfigPath: string;
}): Promise<ApiserverProxy> {
  const admin = await readAdmin(opts.adminKubeconfigPath);
  const upstream = new URL(admin.server);
  const agent = new Agent({
    keepAlive: true,
    ca: admin.ca,
    cert: admin.cert,
    key: admin.key,
    maxSockets: 256,
  });
  const tls = await makeTlsMaterial();
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  /** Open watch streams; `end` finishes the client's stream cleanly and drops the upstream one. */
  const watches = new Set<{ end: () => void }>();
  let expiry: { until: number; answered: Set<string> } | undefined;
  let down = false;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'https://proxy');
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const record: ProxiedRequest = {
      at: Date.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      watch,
      status: 0,
    };
    requests.push(record);
    res.once('close', () => {
      record.closedAt = Date.now();
    });
    if (down) {
      record.injected = 'outage';
      req.socket.destroy();
      return;
    }
    const rv = url.searchParams.get('resourceVersion') ?? '';
    if (
      watch &&
      expiry &&
      Date.now() < expiry.until &&
      rv !== '' &&
      rv !== '0' &&
      !expiry.answered.has(url.pathname)
    ) {
      expiry.answered.add(url.pathname);
      record.injected = 'expired';
      record.status = 200;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(expiredEvent(rv));
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined && !HOP_HEADERS.has(k)) headers[k] = v;
    const up = httpsRequest(
      {
        protocol: 'https:',
        hostname: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers,
        agent,
      },
      (upRes) => {
        record.status = upRes.statusCode ?? 0;
        const outHeaders: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(upRes.headers)) {
          if (v !== undefined && !HOP_HEADERS.has(k)) outHeaders[k] = v;
        }
        res.writeHead(upRes.statusCode ?? 502, outHeaders);
        // Like the apiserver: a watch's headers go out at once, not with its first event (a
        // client that has not seen them cannot abort the watch cleanly).
        res.flushHeaders();
        let detached = false;
        if (watch) {
          const entry = {
            end: () => {
              detached = true;
              upRes.unpipe(res);
              res.end();
              up.destroy();
            },
          };
          watches.add(entry);
          res.once('close', () => watches.delete(entry));
        }
        upRes.pipe(res);
        const broken = () => {
          if (!detached) res.destroy();
        };
        upRes.once('error', broken);
        upRes.once('aborted', broken);
        up.once('error', broken);
      },
    );
    up.once('error', () => {
      if (!res.headersSent) res.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    if (record.method === 'POST') {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_NAME_PEEK) chunks.push(c);
      });
      req.once('end', () => {
        if (size > MAX_NAME_PEEK) return;
        try {
          const name = (
            JSON.parse(Buffer.concat(chunks).toString('utf8')) as { metadata?: { name?: unknown } }
          ).metadata?.name;
          if (typeof name === 'string') record.name = name;
        } catch {
          // Not JSON: nothing to record.
        }
      });
    }
    req.pipe(up);
  };

  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, handle);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  // A client that resets mid-handshake must not take the runner down.
  server.on('tlsClientError', () => {});
  server.on('clientError', (_e, s) => s.destroy());
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;
  const url = `https://127.0.0.1:${port}`;

  await writeFile(
    opts.kubeconfigPath,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'chaos-proxy',
          cluster: { server: url, 'certificate-authority-data': Buffer.from(tls.caPem).toString('base64') },
        },
      ],
      // The proxy authenticates upstream itself; this token is dropped there.
      users: [{ name: 'operator', user: { token: 'via-chaos-proxy' } }],
      contexts: [{ name: 'chaos-proxy', context: { cluster: 'chaos-proxy', user: 'operator' } }],
      'current-context': 'chaos-proxy',
    }),
    { mode: 0o600 },
  );

  const endWatches = (): number => {
    const n = watches.size;
    for (const w of [...watches]) w.end();
    return n;
  };

  let closed = false;
  return {
    url,
    kubeconfigPath: opts.kubeconfigPath,
    requests,
    get openWatches() {
      return watches.size;
    },
    expireWatches: (windowMs = 10_000) => {
      expiry = { until: Date.now() + windowMs, answered: new Set() };
      return endWatches();
    },
    outage: async (ms) => {
      down = true;
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.resetAndDestroy();
      await closing;
      await new Promise((r) => setTimeout(r, ms));
      down = false;
      if (!closed) await listen(port);
    },
    close: async () => {
      closed = true;
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closing.catch(() => undefined);
      agent.destroy();
    },
  };
}
