/** A line chart as standalone SVG (no fonts needed to be valid; text is for viewers that have them). */
export interface Series {
  name: string;
  points: [number, number][];
  color: string;
}

export function lineChartSvg(title: string, series: Series[], width = 640, height = 360): string {
  const pad = { l: 56, r: 16, t: 32, b: 36 };
  const all = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 1)];
  const y0 = Math.min(...ys, 0);
  let y1 = Math.max(...ys, 1e-9);
  if (y0 === y1) y1 = y0 + 1;
  const px = (x: number) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const py = (y: number) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const ticks = Array.from({ length: 5 }, (_, i) => y0 + ((y1 - y0) * i) / 4);
  const parts = [
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${pad.l}" y="20" font-family="sans-serif" font-size="14">${title}</text>`,
    ...ticks.map((t) => `<line x1="${pad.l}" x2="${width - pad.r}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#e5e5e5"/><text x="${pad.l - 6}" y="${(py(t) + 4).toFixed(1)}" font-family="sans-serif" font-size="10" text-anchor="end">${t.toPrecision(3)}</text>`),
    `<text x="${(width / 2).toFixed(0)}" y="${height - 8}" font-family="sans-serif" font-size="11" text-anchor="middle">step</text>`,
    ...series.map((s, i) => {
      const d = s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/><text x="${width - pad.r - 4}" y="${pad.t + 14 * i}" font-family="sans-serif" font-size="11" text-anchor="end" fill="${s.color}">${s.name}</text>`;
    }),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join('')}</svg>\n`;
}
