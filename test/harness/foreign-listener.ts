// A loopback HTTP listener that stands for "some other host": it records every request it gets
// (method, path, whether an Authorization header came along; never the header's value) and answers
// like a registration server would, so a client that wrongly trusts it would carry on. Security tests
// assert that it received nothing.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ForeignRequest {
  method: string;
  path: string;
  authorization: boolean;
}

export interface ForeignListener {
  /** http://127.0.0.1:PORT */
  origin: string;
  requests: ForeignRequest[];
  close(): Promise<void>;
}

export async function startForeignListener(): Promise<ForeignListener> {
  const requests: ForeignRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({
      method: req.method ?? '',
      path: (req.url ?? '/').split('?', 1)[0] ?? '/',
      authorization: req.headers.authorization !== undefined,
    });
    req.resume();
    const id = (req.url ?? '').split('/').pop() ?? 'x';
    const body = JSON.stringify({ client_id: id, redirect_uris: [] });
    res.writeHead(req.method === 'DELETE' ? 204 : 200, {
      'content-type': 'application/json',
      'content-length': req.method === 'DELETE' ? 0 : Buffer.byteLength(body),
    });
    res.end(req.method === 'DELETE' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
