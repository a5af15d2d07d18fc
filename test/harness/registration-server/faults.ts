// Request recording and fault injection. This wraps the provider's request listener at the HTTP
// level (rather than as Koa middleware) so it sees every request, can drop sockets, and runs before
// any provider logic, body parsing included.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultRule, RecordedRequest } from './types.js';

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

/** Request bodies read by the injector itself (only when a fault answers instead of the server). */
const MAX_PEEK_BYTES = 64 * 1024;

export class FaultInjector {
  readonly requests: RecordedRequest[] = [];
  #rules: ActiveRule[] = [];
  // Aborted on close so delayed requests do not keep the process (or close()) waiting.
  readonly #closing = new AbortController();

  /** registrationPath: POSTs there get clientId/clientName recorded. */
  constructor(private readonly registrationPath?: string) {}

  add(rule: FaultRule): void {
    this.#rules.push({ rule, remaining: rule.times ?? 1 });
  }

  clear(): void {
    this.#rules = [];
  }

  abortPending(): void {
    this.#closing.abort();
  }

  /** First matching rule wins; it is consumed by this request (unless its probability skips it). */
  #take(method: string, path: string): FaultRule | undefined {
    const index = this.#rules.findIndex(({ rule }) => {
      if (rule.method && rule.method.toUpperCase() !== method) return false;
      if (rule.pathPattern) {
        rule.pathPattern.lastIndex = 0; // a /g or /y pattern would otherwise remember the last match
        if (!rule.pathPattern.test(path)) return false;
      }
      return rule.probability === undefined || Math.random() < rule.probability;
    });
    const active = this.#rules[index];
    if (!active) return undefined;
    active.remaining -= 1;
    if (active.remaining <= 0) this.#rules.splice(index, 1);
    return active.rule;
  }

  wrap(handler: RequestListener): RequestListener {
    return (req, res) => {
      void this.#handle(req, res, handler);
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse, handler: RequestListener): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const record: RecordedRequest = { method, path, status: 0, at: Date.now() };
    this.requests.push(record);
    recordStatus(res, record);
    const registration =
      method === 'POST' && this.registrationPath !== undefined && path === this.registrationPath;

    const rule = this.#take(method, path);
    if (rule) record.fault = rule.label ?? describeRule(rule);
    if (rule?.delayMs) {
      try {
        await sleep(rule.delayMs, undefined, { signal: this.#closing.signal });
      } catch {
        req.socket.destroy();
        return;
      }
      if (res.destroyed) return;
    }
    const shortCircuit = rule !== undefined && (rule.drop || rule.reset || rule.status !== undefined);
    // The server never sees this request, so its body is ours to read: it names the client.
    if (shortCircuit && registration) record.clientName = clientNameOf(await peekJson(req));
    if (rule?.reset) {
      req.socket.resetAndDestroy();
      return;
    }
    if (rule?.drop) {
      req.socket.destroy();
      return;
    }
    if (rule?.status !== undefined) {
      if (rule.trickle) await trickle(res, rule, this.#closing.signal);
      else respond(res, rule.status, rule.body, rule.headers);
      return;
    }
    if (rule?.swallow) swallow(req, res, record, rule.swallow, registration);
    else if (registration) captureClient(res, record);
    // After captureClient, so what is recorded is what the client receives.
    if (rule?.rewrite) rewriteJson(res, rule.rewrite);
    const onAnswered = rule?.onAnswered;
    res.once('finish', () => {
      if (rule?.swallow) return;
      record.answeredAt = Date.now();
      onAnswered?.(record);
    });
    handler(req, res);
  }
}

function describeRule(rule: FaultRule): string {
  if (rule.swallow) return `swallow-${rule.swallow}`;
  if (rule.reset) return 'reset';
  if (rule.drop) return 'drop';
  if (rule.status !== undefined) return `status ${rule.status}${rule.trickle ? ' trickled' : ''}`;
  if (rule.rewrite) return 'rewritten';
  if (rule.delayMs) return `delay ${rule.delayMs}ms`;
  return 'observed';
}

function clientNameOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const name = (body as Record<string, unknown>).client_name;
  return typeof name === 'string' ? name : undefined;
}

async function peekJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_PEEK_BYTES) return undefined;
      chunks.push(chunk);
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Records client_id and client_name of a registration answer (nothing else of the body). */
function recordClient(chunk: unknown, record: RecordedRequest): void {
  if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk)) return;
  try {
    const body = JSON.parse(chunk.toString()) as Record<string, unknown>;
    if (typeof body.client_id === 'string') record.clientId = body.client_id;
    const name = clientNameOf(body);
    if (name !== undefined) record.clientName = name;
  } catch {
    // Not a JSON answer (an error page): nothing to record.
  }
}

function captureClient(res: ServerResponse, record: RecordedRequest): void {
  const end = res.end;
  const patched = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    recordClient(args[0], record);
    return Reflect.apply(end, this, args) as ServerResponse;
  };
  res.end = patched as typeof res.end;
}

/** The handler's answer goes nowhere: the socket is destroyed ('drop') or left hanging ('hang'). */
function swallow(
  req: IncomingMessage,
  res: ServerResponse,
  record: RecordedRequest,
  how: 'drop' | 'hang',
  registration: boolean,
): void {
  res.writeHead = function (this: ServerResponse, status: number) {
    record.status = status;
    return this;
  } as typeof res.writeHead;
  res.write = (() => true) as typeof res.write;
  res.end = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (record.status === 0) record.status = this.statusCode;
    if (registration) recordClient(args[0], record);
    if (how === 'drop') req.socket.destroy();
    return this;
  } as typeof res.end;
}

// The status is captured when the head is written (synchronously inside res.end for Koa), so it is
// in place before the client can see the response; 'finish' could fire after the client read it.
function recordStatus(res: ServerResponse, record: RecordedRequest): void {
  const writeHead = res.writeHead;
  const patched = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    record.status = typeof args[0] === 'number' ? args[0] : this.statusCode;
    return Reflect.apply(writeHead, this, args) as ServerResponse;
  };
  res.writeHead = patched as typeof res.writeHead;
}

function encode(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): { head: Record<string, string>; payload: string } {
  // Lower-cased keys so a caller's Content-Type (any spelling) wins over the defaults below.
  const head = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  let payload = '';
  if (typeof body === 'string') {
    payload = body;
    head['content-type'] ??= 'text/plain; charset=utf-8';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    head['content-type'] ??= 'application/json; charset=utf-8';
  }
  if (status !== 204 && status !== 304) head['content-length'] = String(Buffer.byteLength(payload));
  return { head, payload };
}

function respond(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const { head, payload } = encode(status, body, headers);
  res.writeHead(status, head);
  res.end(payload);
}

/** Sends the head at once and the body a few bytes at a time (a slow or hostile server). */
async function trickle(res: ServerResponse, rule: FaultRule, closing: AbortSignal): Promise<void> {
  const { head, payload } = encode(rule.status ?? 200, rule.body, rule.headers);
  const { intervalMs, chunkBytes = 1 } = rule.trickle ?? { intervalMs: 0 };
  res.writeHead(rule.status ?? 200, head);
  const bytes = Buffer.from(payload);
  for (let at = 0; at < bytes.length; at += chunkBytes) {
    if (res.destroyed) return;
    res.write(bytes.subarray(at, at + chunkBytes));
    try {
      await sleep(intervalMs, undefined, { signal: closing });
    } catch {
      res.destroy();
      return;
    }
  }
  res.end();
}

/**
 * Lets the real handler answer, then replaces its JSON body with `rewrite(body)` (status and other
 * headers stay): a provider that answers with altered content. Non-JSON answers pass unchanged.
 */
function rewriteJson(res: ServerResponse, rewrite: NonNullable<FaultRule['rewrite']>): void {
  const chunks: Buffer[] = [];
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown): boolean {
    if (chunk !== undefined && chunk !== null) chunks.push(Buffer.from(chunk as string));
    return true;
  } as typeof res.write;
  res.end = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    const chunk = args[0];
    if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) chunks.push(Buffer.from(chunk));
    let text = Buffer.concat(chunks).toString('utf8');
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        text = JSON.stringify(rewrite(parsed as Record<string, unknown>));
        if (!this.headersSent) this.setHeader('content-length', Buffer.byteLength(text));
      }
    } catch {
      // not JSON: unchanged
    }
    res.write = write;
    res.end = end;
    return Reflect.apply(end, this, [text]) as ServerResponse;
  } as typeof res.end;
}
