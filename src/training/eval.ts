import type { Engine } from '../engine/engine.js';
import { GREEDY, type SamplingParams } from '../engine/sampler.js';
import type { ContentPart, GenerationRequest, ToolStep } from '../engine/types.js';
import type { ToolName } from '../tools/definitions.js';
import { mapConcurrent } from '../util/concurrency.js';
import { accuracy, anlsOfPrediction, CHOICE_LETTERS, mean, standardError } from './metrics.js';
import type { Task } from './tasks/types.js';

export interface TaskOutcome {
  id: string;
  suite: string;
  prediction: string;
  score: number;
  /** Visual operations the model ran. */
  visualOps: number;
  /** Image tasks with a ground-truth region: whether the first crop of the original image contains it (no crop: false). */
  cropHit?: boolean;
}

export interface SuiteScore {
  score: number;
  /** Standard error of the mean score over the suite's tasks (as lm-evaluation-harness reports it): how far n tasks pin the score down. */
  score_stderr: number;
  metric: 'accuracy' | 'anls';
  /** Rate of pixel-space reasoning: fraction of tasks with at least one visual operation. */
  rapr: number;
  /**
   * Share of the image tasks with a ground-truth region whose first crop contains the region
   * (null when the suite has none): where the model looked, apart from whether it read it right.
   */
  crop_hit: number | null;
  n: number;
}

/** The user turn of a task: its image or frames, the question, and multiple-choice options as `A: ...` lines. */
export function taskContent(task: Task): ContentPart[] {
  const options = task.choices ? `\n${task.choices.map((c, i) => `${CHOICE_LETTERS[i]}: ${c}`).join('\n')}` : '';
  const media: ContentPart[] = task.frames ? [{ type: 'video', frames: task.frames }] : task.image ? [{ type: 'image', image: task.image }] : [];
  return [...media, { type: 'text', text: `${task.question}${options}` }];
}

/** Tools offered for a task: select_frames (and crop) for a video, crop for an image. */
export function toolsFor(task: Task): ToolName[] {
  return task.frames ? ['select_frames', 'crop_image_normalized'] : ['crop_image_normalized'];
}

export function scoreTask(task: Task, prediction: string): number {
  return task.metric === 'anls' ? anlsOfPrediction(prediction, task.answers ?? [task.answer]) : accuracy(prediction, task.answer, task.kind, task.choices);
}

/** The request a task is asked with (evaluation and RL rollouts alike). */
export function taskRequest(task: Task, opts: { tools: boolean; maxTokens: number; maxToolCalls: number; sampling: SamplingParams }): GenerationRequest {
  return {
    messages: [{ role: 'user', content: taskContent(task) }],
    sampling: opts.sampling,
    maxTokens: opts.maxTokens,
    tools: opts.tools ? toolsFor(task) : [],
    maxToolCalls: opts.maxToolCalls,
    stop: [],
  };
}

/**
 * Whether the model looked at the right place first: an image task's first crop of the original
 * contains the region; a video task's first frame selection includes one of the answer frames.
 */
export function cropHit(task: Task, steps: ToolStep[]): boolean | undefined {
  if (task.frames && task.answerFrames) {
    const frames = steps.find((s) => s.ok && s.frames)?.frames;
    return frames !== undefined && frames.some((f) => task.answerFrames!.includes(f));
  }
  if (!task.image || !task.region) return undefined;
  const box = steps.find((s) => s.ok && s.box && (s.target_image ?? 1) === 1)?.box;
  const [x1, y1, x2, y2] = task.region;
  return box !== undefined && box[0] <= x1 && box[1] <= y1 && box[2] >= x2 && box[3] >= y2;
}

/** Tokens an evaluated answer may take, unless the caller says otherwise (`eval --max-tokens`). */
export const EVAL_MAX_TOKENS = 256;

/** Runs every task through the engine (greedy, real tool loop unless tools are off), as many at once as the engine accepts. */
export async function evaluateTasks(engine: Engine, tasks: Task[], opts: { tools: boolean; maxTokens?: number }): Promise<TaskOutcome[]> {
  return mapConcurrent(tasks, engine.capacity, async (task) => {
    const r = await engine.generate(taskRequest(task, { tools: opts.tools, maxTokens: opts.maxTokens ?? EVAL_MAX_TOKENS, maxToolCalls: 4, sampling: GREEDY }));
    return { id: task.id, suite: task.suite, prediction: r.text, score: scoreTask(task, r.text), visualOps: r.steps.length, cropHit: cropHit(task, r.steps) };
  });
}

export function summarize(tasks: Task[], outcomes: TaskOutcome[]): Record<string, SuiteScore> {
  const suites: Record<string, SuiteScore> = {};
  for (const suite of new Set(tasks.map((t) => t.suite))) {
    const idx = tasks.flatMap((t, i) => (t.suite === suite ? [i] : []));
    const hits = idx.flatMap((i) => (outcomes[i]!.cropHit === undefined ? [] : [outcomes[i]!.cropHit]));
    suites[suite] = {
      score: mean(idx.map((i) => outcomes[i]!.score)),
      score_stderr: standardError(idx.map((i) => outcomes[i]!.score)),
      metric: tasks[idx[0]!]!.metric,
      rapr: mean(idx.map((i) => (outcomes[i]!.visualOps > 0 ? 1 : 0))),
      crop_hit: hits.length > 0 ? mean(hits.map((h) => (h ? 1 : 0))) : null,
      n: idx.length,
    };
  }
  return suites;
}
