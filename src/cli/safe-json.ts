// JSON.parse whose error never quotes the input: V8's messages can include an excerpt of the text,
// and the text may be a client JSON holding a client secret and a registration access token.

export type JsonResult =
  | { ok: true; value: unknown }
  | { ok: false; error: { message: string; line?: number; column?: number } };

export function parseJson(text: string): JsonResult {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    const at = /line (\d+) column (\d+)/.exec(message);
    if (!at) return { ok: false, error: { message: 'invalid JSON' } };
    const [line, column] = [Number(at[1]), Number(at[2])];
    return { ok: false, error: { message: `invalid JSON at line ${line}, column ${column}`, line, column } };
  }
}
