// Behaviours of other RFC 7591/7592 servers laid over node-oidc-provider, so one real server can
// speak each of them: a raw HTTP layer mounts the issuer below a base path (Keycloak's realms) and
// rewrites request bodies (what such a server accepts), and a Koa middleware rewrites answers
// (what such a server says). The client store keeps what node-oidc-provider keeps.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { KoaContextLike, Middleware } from 'oidc-provider';
import { REGISTRATION_PATH, TOKEN_PATH } from './provider-config.js';
import type { Dialect, RatMode, ResolvedDialect } from './types.js';

/** String metadata an emptyForUnset server answers with '' when the client did not send it. */
export const EMPTY_STRING_FIELDS = ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'jwks_uri'] as const;
/** List metadata an emptyForUnset server answers with null when the client did not send it. */
export const NULL_LIST_FIELDS = ['contacts', 'response_types', 'post_logout_redirect_uris'] as const;
/** Bookkeeping a vendorFields server adds to every answer (besides jwks: {}). */
export const VENDOR_FIELDS = ['created_at', 'updated_at', 'owner', 'audience', 'metadata'] as const;

const MAX_BODY_BYTES = 64 * 1024;

export function resolveDialect(dialect: Dialect | undefined, mode: RatMode): ResolvedDialect {
  const basePath = (dialect?.basePath ?? '').replace(/\/+$/, '');
  if (basePath !== '' && !basePath.startsWith('/')) throw new Error('dialect.basePath must start with /');
  return {
    ...dialect,
    basePath,
    registrationPath: dialect?.registrationPath ?? REGISTRATION_PATH,
    tokenPath: dialect?.tokenPath ?? TOKEN_PATH,
    ratRotation: dialect?.ratRotation ?? (mode === 'rotating' ? 'every-call' : 'never'),
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(payload)),
  });
  res.end(payload);
}

/** The request as node-oidc-provider should see it, with another body (it reads req as a stream). */
function withBody(req: IncomingMessage, body: Buffer): IncomingMessage {
  const replay = Readable.from([body], { objectMode: false }) as unknown as IncomingMessage;
  const headers = { ...req.headers, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  return Object.assign(replay, {
    headers,
    rawHeaders: req.rawHeaders,
    method: req.method,
    url: req.url,
    originalUrl: (req as { originalUrl?: string }).originalUrl,
    httpVersion: req.httpVersion,
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    socket: req.socket,
    connection: req.socket,
    complete: true,
  });
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function normaliseUri(uri: unknown): unknown {
  return typeof uri === 'string' && URL.canParse(uri) ? new URL(uri).href : uri;
}

/**
 * The request side: mounts the provider below basePath and rewrites POST/PUT bodies of the
 * registration API before node-oidc-provider reads them.
 */
export class DialectRequests {
  constructor(private readonly d: ResolvedDialect) {}

  wrap(handler: RequestListener): RequestListener {
    return (req, res) => {
      this.#handle(req, res, handler).catch(() => {
        if (!res.headersSent) answer(res, 500, { error: 'server_error' });
        else res.destroy();
      });
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse, handler: RequestListener): Promise<void> {
    const base = this.d.basePath;
    if (base !== '') {
      const url = req.url ?? '/';
      if (url !== base && !url.startsWith(`${base}/`) && !url.startsWith(`${base}?`)) {
        answer(res, 404, { error: 'not_found', error_description: 'no such realm' });
        return;
      }
      // node-oidc-provider builds its URLs from originalUrl minus url (how a mounted app sees it).
      (req as { originalUrl?: string }).originalUrl = url;
      req.url = url.slice(base.length) || '/';
    }
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const method = (req.method ?? 'GET').toUpperCase();
    const route = this.d.registrationPath;
    const update = method === 'PUT' && path.startsWith(`${route}/`);
    if (!((method === 'POST' && path === route) || update) || !this.#rewritesBodies(update)) {
      handler(req, res);
      return;
    }
    const raw = await readBody(req);
    if (raw === undefined) {
      answer(res, 413, { error: 'invalid_request', error_description: 'request body too large' });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      handler(withBody(req, raw), res); // node-oidc-provider says what is wrong with it
      return;
    }
    if (!isRecord(body)) {
      handler(withBody(req, raw), res);
      return;
    }
    const refusal = update ? this.#checkSecret(body) : undefined;
    if (refusal) {
      answer(res, 400, refusal);
      return;
    }
    this.#acceptOwnOutput(body);
    this.#normalise(body);
    handler(withBody(req, Buffer.from(JSON.stringify(body))), res);
  }

  #rewritesBodies(update: boolean): boolean {
    const d = this.d;
    return (
      d.emptyForUnset === true ||
      d.vendorFields === true ||
      d.normalise !== undefined ||
      (update && (d.putClientSecret ?? 'optional') !== 'optional')
    );
  }

  /** The PUT rule on client_secret; RFC 7592 makes it optional (and equal to the current one). */
  #checkSecret(body: Record<string, unknown>): Record<string, unknown> | undefined {
    const rule = this.d.putClientSecret ?? 'optional';
    const present = typeof body.client_secret === 'string' && body.client_secret !== '';
    if (rule === 'required' && !present) {
      return {
        error: 'invalid_request',
        error_description: 'client_secret is required to update the client',
      };
    }
    if (rule === 'forbidden' && 'client_secret' in body) {
      return {
        error: 'invalid_client_metadata',
        error_description: 'client_secret must not be sent when updating the client',
      };
    }
    return undefined;
  }

  /** A server takes back what it answered: its '' / null for "not set" and its bookkeeping. */
  #acceptOwnOutput(body: Record<string, unknown>): void {
    if (this.d.emptyForUnset) {
      for (const [key, value] of Object.entries(body)) if (value === '' || value === null) delete body[key];
    }
    if (this.d.vendorFields) {
      for (const key of VENDOR_FIELDS) delete body[key];
      if (isRecord(body.jwks) && Object.keys(body.jwks).length === 0) delete body.jwks;
    }
  }

  #normalise(body: Record<string, unknown>): void {
    const n = this.d.normalise;
    if (!n) return;
    if (n.redirectUris) {
      for (const key of ['redirect_uris', 'post_logout_redirect_uris']) {
        const list = body[key];
        if (Array.isArray(list)) body[key] = [...new Set(list.map(normaliseUri))];
      }
    }
    if (typeof body.scope === 'string' && body.scope.trim() !== '') {
      let tokens = [...new Set([...body.scope.split(/\s+/).filter(Boolean), ...(n.scopeDefaults ?? [])])];
      if (n.reorderScope) tokens = tokens.sort().reverse();
      body.scope = tokens.join(' ');
    }
    if (n.addGrantTypes) {
      const sent = Array.isArray(body.grant_types) ? body.grant_types : ['authorization_code'];
      body.grant_types = [...new Set([...sent, ...n.addGrantTypes])];
    }
  }
}

interface OidcContextLike extends KoaContextLike {
  oidc?: { body?: unknown };
}

/** What the server remembers per client for its answers. */
interface Bookkeeping {
  /** Metadata keys the client sent on its last POST or PUT. */
  sent: Set<string>;
  updatedAt: number;
}

/**
 * The answer side: status codes, fields left out or added, '' / null for "not set". Runs outside
 * node-oidc-provider's routes (provider.use), on the registration API only.
 */
export function dialectAnswers(d: ResolvedDialect, clientExists: (clientId: string) => boolean): Middleware {
  const clients = new Map<string, Bookkeeping>();
  const route = d.registrationPath;
  return async (raw, next) => {
    await next();
    const ctx = raw as OidcContextLike;
    const registration = ctx.path === route;
    if (!registration && !ctx.path.startsWith(`${route}/`)) return;
    const pathId = registration ? undefined : decodeURIComponent(ctx.path.slice(route.length + 1));
    if (
      pathId !== undefined &&
      ctx.status === 401 &&
      d.unknownClientStatus === 404 &&
      !clientExists(pathId)
    ) {
      ctx.body = { error: 'invalid_client', error_description: 'client not found' };
      ctx.status = 404;
      return;
    }
    if (ctx.method === 'DELETE' && ctx.status === 204) {
      if (pathId !== undefined) clients.delete(pathId);
      if (d.deleteStatus === 200) {
        ctx.body = '';
        ctx.status = 200;
      }
      return;
    }
    const body = ctx.body;
    if (!isRecord(body) || ctx.status < 200 || ctx.status >= 300 || typeof body.client_id !== 'string')
      return;
    const now = Date.now();
    let kept = clients.get(body.client_id);
    if ((ctx.method === 'POST' || ctx.method === 'PUT') && isRecord(ctx.oidc?.body)) {
      kept = { sent: new Set(Object.keys(ctx.oidc.body)), updatedAt: now };
      clients.set(body.client_id, kept);
    }
    if (registration && ctx.method === 'POST' && d.registrationStatus === 200) ctx.status = 200;
    const issuedAt = typeof body.client_id_issued_at === 'number' ? body.client_id_issued_at : undefined;
    if (d.clientSecretLifetimeSeconds && issuedAt !== undefined && 'client_secret_expires_at' in body) {
      body.client_secret_expires_at = issuedAt + d.clientSecretLifetimeSeconds;
    }
    if (ctx.method === 'GET' && d.readWithoutCredentials) {
      delete body.client_secret;
      delete body.registration_access_token;
    }
    if (d.emptyForUnset) {
      const unset = (key: string): boolean => (kept ? !kept.sent.has(key) : !(key in body));
      for (const key of EMPTY_STRING_FIELDS) if (unset(key)) body[key] = '';
      for (const key of NULL_LIST_FIELDS) if (unset(key)) body[key] = null;
    }
    if (d.vendorFields) {
      const created = new Date((issuedAt ?? Math.floor(now / 1000)) * 1000).toISOString();
      body.created_at = created;
      body.updated_at = kept ? new Date(kept.updatedAt).toISOString() : created;
      body.owner = '';
      body.audience = [];
      body.metadata = {};
      if (!('jwks' in body)) body.jwks = {};
    }
  };
}
