import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { decodeImage, type RgbImage } from '../tools/image.js';
import type { AnswerKind } from './metrics.js';
import type { SuiteName, Task } from './tasks/types.js';

/** One line of a user dataset (paths relative to the JSONL file). */
export interface DatasetLine {
  id: string;
  image?: string;
  frames?: string[];
  question: string;
  choices?: string[];
  answer: string;
  answers?: string[];
  metric: 'accuracy' | 'anls';
  /** Optional: where the answer is, [x1, y1, x2, y2] in pixels of the image; eval then reports crop hits. */
  region?: [number, number, number, number];
}

const png = (img: RgbImage) => sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();

/** `pixelreasoner tasks export`: images as PNG files plus tasks.jsonl. */
export async function exportTasks(tasks: Task[], outDir: string): Promise<string> {
  await mkdir(join(outDir, 'images'), { recursive: true });
  const lines: string[] = [];
  for (const t of tasks) {
    const line: DatasetLine = { id: t.id, question: t.question, answer: t.answer, metric: t.metric };
    if (t.choices) line.choices = t.choices;
    if (t.answers) line.answers = t.answers;
    if (t.image) {
      line.image = `images/${t.id}.png`;
      if (t.region) line.region = t.region;
      await writeFile(join(outDir, line.image), await png(t.image));
    }
    if (t.frames) {
      line.frames = await Promise.all(t.frames.map(async (f, i) => {
        const rel = `images/${t.id}-frame${i + 1}.png`;
        await writeFile(join(outDir, rel), await png(f));
        return rel;
      }));
    }
    lines.push(JSON.stringify(line));
  }
  const file = join(outDir, 'tasks.jsonl');
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

function kindOf(line: DatasetLine): AnswerKind {
  if (line.choices) return 'choice';
  if (line.metric === 'accuracy' && /^-?\d+$/.test(line.answer.trim())) return 'integer';
  return 'text';
}

/** Reads a user dataset (`eval --dataset`) into tasks scored the way the suites are. */
export async function readDataset(file: string): Promise<Task[]> {
  const base = dirname(resolve(file));
  const text = await readFile(file, 'utf8');
  const load = async (p: string) => decodeImage(await readFile(resolve(base, p)), { maxPixels: 100_000_000 });
  return Promise.all(
    text.split('\n').filter((l) => l.trim()).map(async (raw, n) => {
      const line = JSON.parse(raw) as DatasetLine;
      if (!line.question || line.answer === undefined) throw new Error(`${file}:${n + 1}: needs "question" and "answer"`);
      const suite = (line.id.match(/^(.*)-\d+$/)?.[1] ?? 'dataset') as SuiteName;
      return {
        id: line.id, suite, question: line.question, choices: line.choices, answer: line.answer, answers: line.answers,
        metric: line.metric ?? 'accuracy', kind: kindOf(line), region: line.image ? line.region : undefined,
        image: line.image ? await load(line.image) : undefined,
        frames: line.frames ? await Promise.all(line.frames.map(load)) : undefined,
      };
    }),
  );
}
