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

export class FaultInjector {
  readonly requests: RecordedRequest[] = [];
  #rules: ActiveRule[] = [];
  // Aborted on close so delayed requests do not keep the process (or close()) waiting.
  readonly #closing = new AbortController();

  add(rule: FaultRule): void {
    this.#rules.push({ rule, remaining: rule.times ?? 1 });
  }

  clear(): void {
    this.#rules = [];
  }

  abortPending(): void {
    this.#closing.abort();
  }

  /** First matching rule wins; it is consumed by this request. */
  #take(method: string, path: string): FaultRule | undefined {
    const index = this.#rules.findIndex(({ rule }) => {
      if (rule.method && rule.method.toUpperCase() !== method) return false;
      if (rule.pathPattern) {
        rule.pathPattern.lastIndex = 0; // a /g or /y pattern would otherwise remember the last match
        if (!rule.pathPattern.test(path)) return false;
      }
      return true;
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

    const rule = this.#take(method, path);
    if (rule?.delayMs) {
      try {
        await sleep(rule.delayMs, undefined, { signal: this.#closing.signal });
      } catch {
        req.socket.destroy();
        return;
      }
      if (res.destroyed) return;
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
    if (rule?.rewrite) rewriteJson(res, rule.rewrite);
    handler(req, res);
  }
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
