import { Rng } from '../../util/random.js';
import { blackFrameSvg } from './framed-squares.js';
import { COLORS, hex, renderScene, requireFonts } from './render.js';
import { IMAGE_SIDE_RANGE, type OptionRanges, type Task } from './types.js';

export interface InfovqaOptions {
  width: number;
  height: number;
  /** Font size of the key table's text, in pixels. */
  fontSize: number;
  rows: number;
  /** Characters per code. */
  codeLength: number;
  /** Width of a bold black frame around the key table (V*'s frame, found at any resolution); 0: none. */
  frame: number;
}

export const INFOVQA_DEFAULTS: InfovqaOptions = { width: 1280, height: 960, fontSize: 5, rows: 5, codeLength: 4, frame: 0 };

/** Monospace font of the table (its advance is 0.6 em, which the layout relies on). */
export const TABLE_FONT = 'DejaVu Sans Mono';
/** Characters of codes: no look-alikes (0/O, 1/I/L). */
export const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const LABELS = ['north', 'south', 'east', 'west', 'delta', 'alpha', 'omega', 'sigma', 'river', 'ridge', 'coast', 'plain'];

/** A table has at most one row per label. */
export const INFOVQA_RANGES: OptionRanges<InfovqaOptions> = {
  width: IMAGE_SIDE_RANGE, height: IMAGE_SIDE_RANGE, fontSize: [3, 128], rows: [1, LABELS.length], codeLength: [1, 16], frame: [0, 40],
};
const WORDS = ['Revenue', 'Growth', 'Market', 'Report', 'Summary', 'Output', 'Region', 'Budget'];

export interface InfovqaLayout {
  table: { x: number; y: number; w: number; h: number };
  rows: { label: string; code: string; x: number; y: number }[];
  /** Row the question asks about. */
  asked: number;
  /** x of a row's code text (baseline at the row's y). */
  codeX: number;
  fontSize: number;
}

/** Where everything goes (deterministic per seed); the generator draws it, tests read the code cells from it. */
export function infovqaLayout(seed: number, opts: InfovqaOptions = INFOVQA_DEFAULTS): InfovqaLayout {
  const rng = new Rng(seed * 15485863 + 11);
  const fs = opts.fontSize;
  const rowH = Math.round(fs * 1.5);
  const labelChars = 6;
  const w = Math.round((labelChars + 2 + opts.codeLength) * 0.6 * fs) + 12;
  const h = rowH * (opts.rows + 1) + 8;
  if (w + 80 > opts.width || h + 160 > opts.height) throw new Error(`infovqa-syn: a key table of ${opts.rows} rows in ${fs} px type (${w}x${h} px) does not fit a ${opts.width}x${opts.height} image below its title`);
  const x = 40 + rng.int(opts.width - 80 - w);
  const y = 120 + rng.int(opts.height - 160 - h);
  const labels = [...LABELS].sort(() => rng.next() - 0.5).slice(0, opts.rows);
  const rows = labels.map((label, i) => ({
    label,
    code: Array.from({ length: opts.codeLength }, () => CODE_ALPHABET[rng.int(CODE_ALPHABET.length)]).join(''),
    x: x + 6,
    y: y + rowH * (i + 2),
  }));
  return { table: { x, y, w, h }, rows, asked: rng.int(opts.rows), codeX: x + 6 + Math.round((labelChars + 2) * 0.6 * fs), fontSize: fs };
}

/**
 * InfoVQA-like: an infographic (title, bar chart, large words) with a small key table whose
 * codes are set in a 5 px font: at the model's input resolution the characters are a couple of
 * pixels tall and unreadable; in a crop of the table they are legible. Text answer, scored by ANLS.
 */
export async function infovqaTask(seed: number, opts: InfovqaOptions = INFOVQA_DEFAULTS): Promise<Task> {
  await requireFonts();
  const layout = infovqaLayout(seed, opts);
  const rng = new Rng(seed * 7 + 3);
  const { width: W, height: H, fontSize: fs } = opts;
  const parts: string[] = [`<rect width="${W}" height="${H}" fill="#f7f7f2"/>`];
  parts.push(`<text x="40" y="70" font-family="DejaVu Sans" font-size="44" fill="#222">${WORDS[rng.int(WORDS.length)]} ${2000 + rng.int(30)}</text>`);
  const colors = Object.values(COLORS);
  const bars = 6 + rng.int(4);
  for (let i = 0; i < bars; i++) {
    const bh = 80 + rng.int(360);
    const bx = 60 + i * Math.floor((W - 120) / bars);
    parts.push(`<rect x="${bx}" y="${H - 40 - bh}" width="${Math.floor((W - 120) / bars) - 24}" height="${bh}" fill="${hex(colors[i % colors.length]!)}" opacity="0.35"/>`);
  }
  for (let i = 0; i < 5; i++) {
    parts.push(`<text x="${40 + rng.int(W - 300)}" y="${140 + rng.int(H - 200)}" font-family="DejaVu Sans" font-size="${22 + rng.int(14)}" fill="#555" opacity="0.6">${WORDS[rng.int(WORDS.length)]}</text>`);
  }
  const t = layout.table;
  if (opts.frame > 0) parts.push(blackFrameSvg(t.x, t.y, t.w, t.h, opts.frame));
  parts.push(`<rect x="${t.x}" y="${t.y}" width="${t.w}" height="${t.h}" fill="#ffffff" stroke="#333" stroke-width="1"/>`);
  const text = (x: number, y: number, s: string) => `<text x="${x}" y="${y}" font-family="${TABLE_FONT}" font-size="${fs}" fill="#000">${s}</text>`;
  parts.push(text(t.x + 6, t.y + Math.round(fs * 1.5), 'KEY'));
  for (const row of layout.rows) parts.push(text(row.x, row.y, row.label), text(layout.codeX, row.y, row.code));
  const image = await renderScene(W, H, parts);
  const asked = layout.rows[layout.asked]!;
  return {
    id: `infovqa-syn-${seed}`,
    suite: 'infovqa-syn',
    image,
    question: `In the small key table, what is the code for "${asked.label}"?`,
    answer: asked.code,
    answers: [asked.code],
    kind: 'text',
    metric: 'anls',
    region: [t.x, t.y, t.x + t.w, t.y + t.h],
  };
}
