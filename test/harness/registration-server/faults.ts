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
      respond(res, rule.status, rule.body, rule.headers);
      return;
    }
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

function respond(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
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
  res.writeHead(status, head);
  res.end(payload);
}
