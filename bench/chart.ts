// The benchmark's chart: one self-contained SVG (no scripts, fonts or network), stacked panels on a
// shared time axis, and an HTML page that inlines it next to the result table.

export interface Series {
  name: string;
  color: string;
  /** [seconds, value], in time order. */
  points: [number, number][];
  dashed?: boolean;
}

export interface Panel {
  title: string;
  series: Series[];
}

export interface Marker {
  at: number;
  label: string;
}

const WIDTH = 900;
const PANEL_H = 170;
const LEFT = 64;
const RIGHT = 150;
const TOP = 34;
const GAP = 42;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** 1, 2 or 5 × 10^k: a tick step giving at most ~`n` ticks up to `max`. */
function niceStep(max: number, n: number): number {
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

const fmt = (v: number) =>
  Math.abs(v) >= 1000 ? `${Math.round(v / 100) / 10}k` : String(Math.round(v * 10) / 10);

export function renderSvg(title: string, panels: Panel[], markers: Marker[], xMax: number): string {
  const plotW = WIDTH - LEFT - RIGHT;
  const height = TOP + panels.length * (PANEL_H + GAP);
  const xStep = niceStep(xMax, 12);
  const x = (s: number) => LEFT + (Math.min(s, xMax) / xMax) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${LEFT}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  panels.forEach((panel, i) => {
    const top = TOP + i * (PANEL_H + GAP) + 16;
    const bottom = top + PANEL_H - 16;
    const yMaxRaw = Math.max(1, ...panel.series.flatMap((s) => s.points.map((p) => p[1])));
    const yStep = niceStep(yMaxRaw, 4);
    const yMax = Math.ceil(yMaxRaw / yStep) * yStep;
    const y = (v: number) => bottom - (v / yMax) * (bottom - top);
    out.push(`<text x="${LEFT}" y="${top - 6}" font-weight="bold">${esc(panel.title)}</text>`);
    for (let v = 0; v <= yMax + 1e-9; v += yStep) {
      out.push(
        `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`,
        `<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(v)}</text>`,
      );
    }
    for (let s = 0; s <= xMax + 1e-9; s += xStep) {
      out.push(
        `<text x="${x(s).toFixed(1)}" y="${bottom + 14}" text-anchor="middle" fill="#555">${fmt(s)}</text>`,
      );
    }
    out.push(`<text x="${LEFT + plotW}" y="${bottom + 28}" text-anchor="end" fill="#555">seconds</text>`);
    // Labels of markers close together are staggered down the panel so they do not overlap.
    let prevAt = Number.NEGATIVE_INFINITY;
    let stagger = 0;
    for (const m of [...markers].sort((a, b) => a.at - b.at)) {
      stagger = m.at - prevAt < xMax * 0.025 ? (stagger + 1) % 3 : 0;
      prevAt = m.at;
      out.push(
        `<line x1="${x(m.at).toFixed(1)}" x2="${x(m.at).toFixed(1)}" y1="${top}" y2="${bottom}" stroke="#999" stroke-dasharray="3 3"/>`,
      );
      if (i === 0) {
        out.push(
          `<text transform="translate(${(x(m.at) + 3).toFixed(1)},${top + 4 + stagger * 45}) rotate(90)" fill="#666" font-size="10">${esc(m.label)}</text>`,
        );
      }
    }
    out.push(
      `<rect x="${LEFT}" y="${top}" width="${plotW}" height="${bottom - top}" fill="none" stroke="#888"/>`,
    );
    panel.series.forEach((s, k) => {
      if (s.points.length > 0) {
        const pts = s.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
        out.push(
          `<polyline fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="6 3"' : ''} points="${pts}"/>`,
        );
      }
      const ly = top + 8 + k * 15;
      out.push(
        `<line x1="${LEFT + plotW + 10}" x2="${LEFT + plotW + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 3"' : ''}/>`,
        `<text x="${LEFT + plotW + 32}" y="${ly + 4}">${esc(s.name)}</text>`,
      );
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Events per second from timestamps (seconds), as a step series over [0, xMax]. */
export function perSecond(times: readonly number[], xMax: number, bucket = 1): [number, number][] {
  const n = Math.ceil(xMax / bucket) + 1;
  const counts = new Array<number>(n).fill(0);
  for (const t of times) {
    const i = Math.floor(t / bucket);
    if (i >= 0 && i < n) counts[i] = (counts[i] ?? 0) + 1;
  }
  return counts.map((c, i) => [i * bucket, c / bucket]);
}

/** Rate from cumulative readings: [t, (v - prev) / (t - prevT)]. */
export function rate(points: readonly [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 1; i < points.length; i++) {
    const [t0, v0] = points[i - 1] as [number, number];
    const [t1, v1] = points[i] as [number, number];
    if (t1 > t0) out.push([t1, Math.max(0, (v1 - v0) / (t1 - t0))]);
  }
  return out;
}

export function renderHtml(title: string, svg: string, table: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:24px;max-width:960px}pre{background:#f6f6f6;padding:12px;overflow:auto;font-size:12px}</style>
</head><body>
<h1>${esc(title)}</h1>
${svg}
<pre>${esc(table)}</pre>
</body></html>
`;
}
