/**
 * Hand-drawn SVG line charts with error bands, for report.html (no chart library, no network). Each
 * chart's <svg> carries `data-chart`, `data-series` (series count) and `data-points` (points drawn), and
 * each series' <g> carries `data-series-name` and `data-points` (and `data-baseline="true"` for a
 * baseline, drawn as a grey dashed line without a band), so a browser test can check that the charts drew
 * data. Points are joined in order of x (a curve over KL joins its steps by KL, not by step).
 */

export interface ChartPoint {
  readonly x: number;
  readonly y: number;
  /** Half-width of the error band at this point (e.g. the stderr). */
  readonly err?: number;
}

export interface ChartSeries {
  readonly name: string;
  readonly points: readonly ChartPoint[];
  /** A reference curve (e.g. the longest answer): grey, dashed, no error band. */
  readonly baseline?: boolean;
}

export interface LineChartSpec {
  /** Value of `data-chart`, e.g. `best-of-n/mean`. */
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  /** A second, smaller line under the x-axis label, e.g. how the x value is computed; the chart grows to fit it. */
  readonly xNote?: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
  /** Plot x on a log2 scale (Best-of-n's n). */
  readonly log2X?: boolean;
  /** Fixed y range; default: the data's, padded. */
  readonly yDomain?: readonly [number, number];
  /** A dashed horizontal line, e.g. 50 (parity with the reference). */
  readonly yReference?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
const BASELINE_PALETTE = ['#444444', '#999999', '#bbbbbb'];
const W = 640;
const H = 360;
const M = { left: 56, right: 160, top: 36, bottom: 48 };
/** Extra height for an `xNote` line. */
const NOTE_H = 14;

export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

const fmt = (v: number): string =>
  Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(3);
const px = (v: number): string => v.toFixed(1);

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.round(v / step) * step);
  return out;
}

export function lineChart(spec: LineChartSpec): string {
  const series = spec.series.filter((s) => s.points.length > 0);
  const all = series.flatMap((s) => s.points);
  const totalPoints = all.length;
  const tx = (x: number): number => (spec.log2X === true ? Math.log2(Math.max(x, 1e-12)) : x);
  const xs = all.map((p) => tx(p.x));
  let x0 = xs.length === 0 ? 0 : Math.min(...xs);
  let x1 = xs.length === 0 ? 1 : Math.max(...xs);
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  let [y0, y1] = spec.yDomain ?? [0, 1];
  if (spec.yDomain === undefined && all.length > 0) {
    y0 = Math.min(...all.map((p) => p.y - (p.err ?? 0)));
    y1 = Math.max(...all.map((p) => p.y + (p.err ?? 0)));
    if (spec.yReference !== undefined) {
      y0 = Math.min(y0, spec.yReference);
      y1 = Math.max(y1, spec.yReference);
    }
    const pad = (y1 - y0) * 0.08 || 1;
    y0 -= pad;
    y1 += pad;
  }
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + ((tx(x) - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => M.top + (1 - (Math.min(Math.max(y, y0), y1) - y0) / (y1 - y0)) * ph;

  const height = spec.xNote === undefined ? H : H + NOTE_H;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="${escapeXml(spec.title)}" data-chart="${escapeXml(spec.id)}" data-series="${series.length}" data-points="${totalPoints}">`,
  );
  parts.push(`<title>${escapeXml(spec.title)}</title>`);
  parts.push(
    `<text x="${W / 2 - M.right / 2}" y="20" text-anchor="middle" class="chart-title">${escapeXml(spec.title)}</text>`,
  );
  // axes and grid
  const yTicks = niceTicks(y0, y1);
  for (const t of yTicks) {
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${px(sy(t))}" y2="${px(sy(t))}" class="grid"/>`);
    parts.push(
      `<text x="${M.left - 6}" y="${px(sy(t) + 4)}" text-anchor="end" class="tick">${fmt(t)}</text>`,
    );
  }
  const xTickValues =
    spec.log2X === true
      ? [...new Set(all.map((p) => p.x))].sort((a, b) => a - b)
      : niceTicks(x0, x1).filter((t) => t >= x0 && t <= x1);
  for (const t of xTickValues) {
    parts.push(
      `<text x="${px(sx(t))}" y="${M.top + ph + 16}" text-anchor="middle" class="tick">${fmt(t)}</text>`,
    );
  }
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" class="frame"/>`);
  parts.push(
    `<text x="${M.left + pw / 2}" y="${H - 8}" text-anchor="middle" class="axis-label">${escapeXml(spec.xLabel)}</text>`,
  );
  if (spec.xNote !== undefined) {
    parts.push(
      `<text x="${M.left + pw / 2}" y="${H - 8 + NOTE_H}" text-anchor="middle" class="axis-note">${escapeXml(spec.xNote)}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${M.top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${M.top + ph / 2})" class="axis-label">${escapeXml(spec.yLabel)}</text>`,
  );
  if (spec.yReference !== undefined && spec.yReference >= y0 && spec.yReference <= y1) {
    parts.push(
      `<line x1="${M.left}" x2="${M.left + pw}" y1="${px(sy(spec.yReference))}" y2="${px(sy(spec.yReference))}" class="reference"/>`,
    );
  }
  let models = 0;
  let baselines = 0;
  series.forEach((s, i) => {
    const color =
      s.baseline === true
        ? (BASELINE_PALETTE[baselines++ % BASELINE_PALETTE.length] as string)
        : (PALETTE[models++ % PALETTE.length] as string);
    const dash = s.baseline === true ? ' stroke-dasharray="6 4"' : '';
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    parts.push(
      `<g data-series-name="${escapeXml(s.name)}" data-points="${pts.length}"${s.baseline === true ? ' data-baseline="true"' : ''}>`,
    );
    if (s.baseline !== true && pts.some((p) => p.err !== undefined && p.err > 0)) {
      const upper = pts.map((p) => `${px(sx(p.x))},${px(sy(p.y + (p.err ?? 0)))}`);
      const lower = pts.map((p) => `${px(sx(p.x))},${px(sy(p.y - (p.err ?? 0)))}`).reverse();
      parts.push(
        `<polygon points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15" stroke="none" class="band"/>`,
      );
    }
    const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${px(sx(p.x))},${px(sy(p.y))}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash} class="line"/>`);
    for (const p of pts) {
      parts.push(
        `<circle cx="${px(sx(p.x))}" cy="${px(sy(p.y))}" r="3" fill="${color}" data-x="${p.x}" data-y="${p.y}"><title>${escapeXml(s.name)}: ${fmt(p.x)} → ${fmt(p.y)}${p.err === undefined ? '' : ` ± ${fmt(p.err)}`}</title></circle>`,
      );
    }
    const ly = M.top + 8 + i * 18;
    parts.push(
      `<line x1="${W - M.right + 12}" x2="${W - M.right + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`,
    );
    parts.push(`<text x="${W - M.right + 38}" y="${ly + 4}" class="legend">${escapeXml(s.name)}</text>`);
    parts.push('</g>');
  });
  if (series.length === 0) {
    parts.push(
      `<text x="${M.left + pw / 2}" y="${M.top + ph / 2}" text-anchor="middle" class="empty">no data</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}
