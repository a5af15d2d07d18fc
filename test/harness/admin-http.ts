import { request } from 'node:https';

export interface ClientTls {
  ca: string;
  cert: string;
  key: string;
}

export interface HttpResult {
  status: number;
  body: string;
}

/**
 * A minimal HTTPS call with the admin client certificate, used only while the control plane boots
 * (before a kubeconfig-based client is worth building) to poll /readyz and probe controllers.
 */
export function adminRequest(
  server: string,
  tls: ClientTls,
  method: string,
  path: string,
  body?: unknown,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(path, server),
      {
        method,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        timeout: 5_000,
        // No keep-alive: a lingering socket would keep the runner's event loop alive after teardown.
        agent: false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
