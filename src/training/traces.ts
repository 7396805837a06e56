import { appendChunk, buildPrompt, buildToolResultChunk, type PromptChunk } from '../engine/prompt.js';
import type { ChatTokenizer } from '../model/chat-tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import type { ToolName } from '../tools/definitions.js';
import { errorTurnText, executeToolCall } from '../tools/operations.js';
import type { VisualInput } from '../model/processor/image-processor.js';
import { RopePositions } from '../model/processor/rope-index.js';
import { endsWithToolCall, parseLastToolCall } from '../tools/tool-call.js';
import { taskContent, toolsFor } from './eval.js';
import { CHOICE_LETTERS } from './metrics.js';
import type { Task } from './tasks/types.js';

export type TraceKind = 'direct' | 'zoom' | 'self-correction' | 'locate' | 'look';

/** One assistant turn of a trace: its text, and whether it is trained on (the erroneous call is not). */
export interface AssistantStep {
  text: string;
  train: boolean;
}

/** A synthesized trajectory: the task, then assistant steps; every step but the last ends in a tool call. */
export interface Trace {
  task: Task;
  kind: TraceKind;
  tools: ToolName[];
  steps: AssistantStep[];
}

/** A trace rendered to the exact token stream the engine produces, with per-token loss weights. */
export interface TokenizedTrace {
  ids: number[];
  positions: [number[], number[], number[]];
  /** weights[t] = 1 where token t is a trained assistant token (the loss predicts it from tokens < t). */
  weights: number[];
  visuals: { start: number; input: VisualInput }[];
}

type Box = [number, number, number, number];

/**
 * The call in the reference's JSON style, the box widened outward to one decimal: the crop pads
 * 0.1 of the image on every side anyway, so tenths always cover the region, and a small model
 * learns ten positions per axis far more easily than a hundred.
 */
function tenthsBox(box: Box, width: number, height: number): string {
  // Fractions must stay below 1 (a 1 would make the reference read pixels), so tenths run 0.0-0.9;
  // the padding still reaches the image edge.
  const axis = (a: number, b: number, size: number) => {
    const lo = Math.min(0.8, Math.max(0, Math.floor((a / size) * 10) / 10));
    const hi = Math.min(0.9, Math.max(lo + 0.1, Math.ceil((b / size) * 10) / 10));
    return [lo.toFixed(1), hi.toFixed(1)];
  };
  const [x1, x2] = axis(box[0], box[2], width);
  const [y1, y2] = axis(box[1], box[3], height);
  return `[${[x1, y1, x2, y2].join(', ')}]`;
}

/** Where the detail is, in words: the whole answer of a locate trace, and said before every crop call. */
function boxSentence(box: Box, width: number, height: number): string {
  return `The box is ${tenthsBox(box, width, height)}.`;
}

function cropCall(box: Box, width: number, height: number): string {
  return `<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": ${tenthsBox(box, width, height)}, "target_image": 1}}\n</tool_call>`;
}

/** The question of a `locate` trace: where the detail the task asks about is. */
export const LOCATE_QUESTION = 'Where is the detail this question is about? Give its box as [x1, y1, x2, y2] fractions of the image.';

/**
 * The closing sentence. A multiple-choice answer boxes the option's text, which scoring accepts
 * like its letter: a small model names what it saw far more reliably than it looks up the letter
 * of the line that names it.
 */
function answerText(task: Task): string {
  if (task.choices) {
    const chosen = task.choices[CHOICE_LETTERS.indexOf(task.answer)] ?? task.answer;
    return `The answer is ${chosen}. \\boxed{${chosen}}`;
  }
  return `The answer is ${task.answer}. \\boxed{${task.answer}}`;
}

/** A region the same size as the answer's in the opposite corner of the image (the wrong first look of a self-correction). */
function wrongRegion(task: Task, seed: number): Box {
  const [x1, y1, x2, y2] = task.region!;
  const { width: w, height: h } = task.image!;
  // Far on both axes, so even the padded crop (0.1 of the image on each side) misses the target.
  const jitter = ((seed % 5) - 2) * 0.01;
  const cx = ((x1 + x2) / 2 < w / 2 ? 0.85 + jitter : 0.15 + jitter) * w;
  const cy = ((y1 + y2) / 2 < h / 2 ? 0.85 + jitter : 0.15 + jitter) * h;
  const hw = (x2 - x1) / 2;
  const hh = (y2 - y1) / 2;
  return [Math.round(cx - hw), Math.round(cy - hh), Math.round(cx + hw), Math.round(cy + hh)];
}

/**
 * Synthesizes a trace for a task. `direct`: text-only reasoning, for questions readable without a
 * zoom (`withTools: false` renders it with a prompt that offers no tools, as `eval --no-tools` asks). `zoom`: one crop of the ground-truth region, then the answer. `look`: a zoom
 * trace's first step alone (the box said and the crop called, nothing run). `self-correction`: a
 * crop of the wrong place (kept in the context, not trained on), the observation that it shows
 * nothing useful, the right crop, then the answer.
 */
export function synthesizeTrace(task: Task, kind: TraceKind, seed = 0, opts: { withTools?: boolean } = {}): Trace {
  const tools = opts.withTools === false ? [] : toolsFor(task);
  const answer = answerText(task);
  if (task.frames && kind !== 'direct') {
    if (tools.length === 0) throw new Error('zoom traces need tools');
    // A video has no image to locate in: its grounding share goes to frame selection (`look`: the
    // call alone; `locate`: the whole selection trace).
    return videoTrace(task, kind === 'self-correction' || kind === 'look' ? kind : 'zoom', tools, answer, seed);
  }
  if (kind === 'locate') {
    // Grounding practice: the box alone, asked without tools and with a short prompt, so it costs
    // a quarter of a zoom trace and teaches where to look (the hard part of a zoom) faster.
    if (!task.image || !task.region) throw new Error(`${task.id}: locate traces need an image task with a ground-truth region`);
    const asked = { ...task, question: `${task.question}\n${LOCATE_QUESTION}`, choices: undefined };
    return { task: asked, kind, tools: [], steps: [{ text: boxSentence(task.region, task.image.width, task.image.height), train: true }] };
  }
  if (kind === 'direct') {
    const opening = tools.length > 0 ? 'The details are large enough to read directly.' : 'Answering from the image as it is shown.';
    return { task, kind, tools, steps: [{ text: `${opening} ${answer}`, train: true }] };
  }
  if (tools.length === 0) throw new Error('zoom traces need tools');
  if (!task.image || !task.region) throw new Error(`${task.id}: zoom traces need an image task with a ground-truth region`);
  const { width, height } = task.image;
  // The box is said in words first, as a locate trace says it, and the call copies it: grounding
  // learned on short locate traces carries over to the call (a box inside the call's JSON alone
  // is a context the locate traces never trained, and a model trained so answers one constant box).
  const sayAndCall = (region: Box, after = '') => `${boxSentence(region, width, height)}${after}\n${cropCall(region, width, height)}`;
  const look = (region: Box) => `The details are too small to read at this resolution. ${sayAndCall(region, ' Let me zoom in.')}`;
  const finalStep = { text: `Now the region is clear. ${answer}`, train: true };
  if (kind === 'zoom') return { task, kind, tools, steps: [{ text: look(task.region), train: true }, finalStep] };
  // Grounding in the zoom trace's own context. Grounding learnt on locate prompts (shorter, no
  // tools) does not carry over: a model with locate 40/40 said the right box in 2/40 zoom traces.
  if (kind === 'look') return { task, kind, tools, steps: [{ text: look(task.region), train: true }] };
  return {
    task, kind, tools,
    steps: [
      { text: look(wrongRegion(task, seed)), train: false },
      { text: `This region does not show what the question asks about. Let me look elsewhere. ${sayAndCall(task.region)}`, train: true },
      finalStep,
    ],
  };
}

function framesCall(frames: number[]): string {
  return `<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [${frames.join(', ')}]}}\n</tool_call>`;
}

/**
 * Video traces: select the first answer frame (one frame at the full image budget is the closer
 * look; every answer frame shows the answer); a self-correction first looks at a frame far from them.
 */
function videoTrace(task: Task, kind: 'zoom' | 'look' | 'self-correction', tools: ToolName[], answer: string, seed: number): Trace {
  if (!task.answerFrames) throw new Error(`${task.id}: frame traces need the ground-truth frames`);
  const n = task.frames!.length;
  const look = 'The frames are too small to see the details. Let me look at the key frame closely.\n';
  const finalStep = { text: `Now the frame is clear. ${answer}`, train: true };
  const first = task.answerFrames[0]!;
  const right = framesCall([first]);
  if (kind === 'look') return { task, kind, tools, steps: [{ text: look + right, train: true }] };
  if (kind === 'zoom') return { task, kind, tools, steps: [{ text: look + right, train: true }, finalStep] };
  const wrong = ((first - 1 + Math.floor(n / 2) + (seed % 3)) % n) + 1;
  return {
    task, kind, tools,
    steps: [
      { text: look + framesCall([wrong]), train: false },
      { text: `This frame does not show what the question asks about. Let me look at another frame.\n${right}`, train: true },
      finalStep,
    ],
  };
}

/**
 * Renders a trace exactly as the engine would run it: the prompt with the tool list and guideline,
 * each assistant step's tokens, and after each tool call the result turn produced by the real
 * `src/tools` operation. Loss weights: 1 on trained assistant tokens (including the `<|im_end|>`
 * that ends the answer), 0 on the prompt, tool results, image tokens and untrained steps.
 */
export async function tokenizeTrace(trace: Trace, tokenizer: ChatTokenizer, config: ModelConfig): Promise<TokenizedTrace> {
  const rope = new RopePositions();
  const out: TokenizedTrace = { ids: [], positions: [[], [], []], weights: [], visuals: [] };
  const prompt = await buildPrompt([{ role: 'user', content: taskContent(trace.task) }], trace.tools, tokenizer, config, rope);
  appendChunk(out, out.weights, prompt.chunk, 0);
  const images = [...prompt.images];
  for (const [i, step] of trace.steps.entries()) {
    const last = i === trace.steps.length - 1;
    // A trace that stops at a call (`look`) ends there: the engine stops at `</tool_call>` too.
    const ids = tokenizer.encode(last && !endsWithToolCall(step.text) ? `${step.text}<|im_end|>` : step.text);
    const chunk: PromptChunk = { ids, positions: [[], [], []], visuals: [] };
    rope.text(ids.length, chunk.positions);
    appendChunk(out, out.weights, chunk, step.train ? 1 : 0);
    if (last) break;
    const parsed = parseLastToolCall(step.text);
    if (!parsed?.ok) throw new Error(`trace step ${i} has no valid tool call`);
    const outcome = await executeToolCall(parsed.call, { images, videoFrames: prompt.videoFrames, enabledTools: trace.tools, processor: config.processor });
    const text = outcome.ok ? outcome.text : errorTurnText(outcome.error);
    const newImages = outcome.ok ? outcome.images : [];
    images.push(...newImages);
    appendChunk(out, out.weights, await buildToolResultChunk(text, newImages, tokenizer, config, rope), 0);
  }
  return out;
}
