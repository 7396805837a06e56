import { Graph } from '../onnx/ir.js';
import { patchDim, type VisionConfig } from '../config.js';
import {
  applyRotary, castFloat, gelu, inverseFrequencies, linear, maskToBias, reshape, rmsNorm, swiglu, transpose, unsqueeze,
} from './layers.js';

interface PatchLayout {
  /** Per-patch row and column inside its frame, in patch units. */
  row: string;
  col: string;
  /** Per-patch height and width of its frame, in patches. */
  height: string;
  width: string;
  /** Per-patch id of the (image, frame) it belongs to: attention never crosses frames or images. */
  segment: string;
  /** Per-patch temporal index inside its video (0 for an image), and the video's temporal length. */
  frame: string;
  frames: string;
}

/**
 * Recovers each patch's (row, col) and frame from image_grid_thw alone, in the merge order the
 * Qwen2VL processor emits (t, h/m, w/m, m, m). Done in-graph so any caller that only passes
 * pixel_values + image_grid_thw (transformers.js) gets correct positions for several images at once.
 */
function patchLayout(g: Graph, pixelValues: string, grid: string, merge: number): PatchLayout {
  const n = g.op('Squeeze', [g.op('Shape', [pixelValues], { start: { i: 0 }, end: { i: 1 } }), g.int64([0])]);
  const idx = g.op('Range', [g.scalarInt64(0), n, g.scalarInt64(1)]); // [N]
  const counts = g.op('ReduceProd', [grid], { axes: { ints: [1] }, keepdims: { i: 0 } }); // [n]
  const ends = g.op('CumSum', [counts, g.scalarInt64(0)]);
  const starts = g.op('Sub', [ends, counts]);
  const passed = g.op('GreaterOrEqual', [unsqueeze(g, idx, [1]), unsqueeze(g, ends, [0])]); // [N,n]
  const image = g.op('ReduceSum', [g.op('Cast', [passed], { to: { i: 7 } }), g.int64([1])], { keepdims: { i: 0 } }); // [N]
  const column = (k: number) => g.op('Gather', [g.op('Gather', [grid, g.scalarInt64(k)], { axis: { i: 1 } }), image], { axis: { i: 0 } });
  const t = column(0);
  const h = column(1);
  const w = column(2);
  const local = g.op('Sub', [idx, g.op('Gather', [starts, image], { axis: { i: 0 } })]);
  const frameSize = g.op('Mul', [h, w]);
  const frame = g.op('Div', [local, frameSize]);
  const r = g.op('Mod', [local, frameSize]);
  const mm = g.scalarInt64(merge * merge);
  const m = g.scalarInt64(merge);
  const block = g.op('Div', [r, mm]);
  const within = g.op('Mod', [r, mm]);
  const blocksPerRow = g.op('Div', [w, m]);
  const row = g.op('Add', [g.op('Mul', [g.op('Div', [block, blocksPerRow]), m]), g.op('Div', [within, m])]);
  const col = g.op('Add', [g.op('Mul', [g.op('Mod', [block, blocksPerRow]), m]), g.op('Mod', [within, m])]);
  // Frames per image never exceed 2^20, so image * 2^20 + frame is a unique segment id.
  const segment = g.op('Add', [g.op('Mul', [image, g.scalarInt64(1 << 20)]), frame]);
  return { row, col, height: h, width: w, segment, frame, frames: t };
}

/** 2-D rotary: the first half of the rotary dims turn with the row, the second half with the column. */
function visionCosSin(g: Graph, layout: PatchLayout, headDim: number): [string, string] {
  const invFreq = g.float(inverseFrequencies(headDim / 2, 10000));
  const angles = (p: string) => g.op('Mul', [unsqueeze(g, castFloat(g, p), [1]), invFreq]);
  const freqs = g.op('Concat', [angles(layout.row), angles(layout.col)], { axis: { i: -1 } }); // [N, D/2]
  const emb = g.op('Concat', [freqs, freqs], { axis: { i: -1 } }); // [N, D]
  return [g.op('Cos', [emb]), g.op('Sin', [emb])];
}

/** pi*k*x for k = 1..K: [N] -> [N, K], the angles of the Fourier features below. */
function harmonics(g: Graph, x: string, frequencies: number): string {
  return g.op('Mul', [unsqueeze(g, x, [1]), g.float(Array.from({ length: frequencies }, (_, i) => Math.PI * (i + 1)))]);
}

/**
 * Fourier features of each patch's centre in frame-relative coordinates (0..1 across the frame):
 * sin and cos of pi*k*u and pi*k*v for k = 1..K, [N, 4K]. Rotary attention is relative, so without
 * these a small model has no direct way to say *where* in the image a detail is (the crop box).
 */
function coordinateFeatures(g: Graph, layout: PatchLayout, frequencies: number): string {
  const half = g.scalarFloat(0.5);
  const rel = (p: string, size: string) => g.op('Div', [g.op('Add', [castFloat(g, p), half]), castFloat(g, size)]);
  const angles = g.op('Concat', [harmonics(g, rel(layout.col, layout.width), frequencies), harmonics(g, rel(layout.row, layout.height), frequencies)], { axis: { i: -1 } }); // [N, 2K]
  return g.op('Concat', [g.op('Sin', [angles]), g.op('Cos', [angles])], { axis: { i: -1 } });
}

/**
 * Fourier features of each patch's temporal position inside its video, centred on the clip
 * (delta in -0.5..0.5): sin(pi*k*delta) and 1 - cos(pi*k*delta) for k = 1..K, [N, 2K]. Vision
 * attention never crosses frames and the decoder's rotary positions are relative, so without these
 * no feature says *which* frame a detail is in (the frame number select_frames needs). An image is
 * a one-frame clip (delta = 0), where every feature is 0: images are untouched by this projection,
 * so it can be added to a model trained on images without changing what it does on them.
 */
function temporalFeatures(g: Graph, layout: PatchLayout, frequencies: number): string {
  const half = g.scalarFloat(0.5);
  const delta = g.op('Sub', [g.op('Div', [g.op('Add', [castFloat(g, layout.frame), half]), castFloat(g, layout.frames)]), half]);
  const angles = harmonics(g, delta, frequencies);
  return g.op('Concat', [g.op('Sin', [angles]), g.op('Sub', [g.scalarFloat(1), g.op('Cos', [angles])])], { axis: { i: -1 } });
}

/** Additive attention biases [1,N,N]: global (same frame) and windowed (same frame and window). */
function visionBiases(g: Graph, layout: PatchLayout, windowPatches: number): { full: string; window: string } {
  const same = (x: string) => g.op('Equal', [unsqueeze(g, x, [1]), unsqueeze(g, x, [0])]);
  const fullAllowed = same(layout.segment);
  const wp = g.scalarInt64(windowPatches);
  const windowId = g.op('Add', [g.op('Mul', [g.op('Div', [layout.row, wp]), g.scalarInt64(1 << 20)]), g.op('Div', [layout.col, wp])]);
  const windowAllowed = g.op('And', [fullAllowed, same(windowId)]);
  return { full: unsqueeze(g, maskToBias(g, fullAllowed), [0]), window: unsqueeze(g, maskToBias(g, windowAllowed), [0]) };
}

/** Attention over the [N, hidden] patches of one block: q, k, v projected and rotated, then one of the layouts below. */
type AttentionCore = (q: string, k: string, v: string) => string;

function visionAttention(g: Graph, x: string, prefix: string, c: VisionConfig, cos: string, sin: string, core: AttentionCore): string {
  const d = c.hidden_size / c.num_heads;
  const qkv = linear(g, x, `${prefix}.qkv`, c.hidden_size, 3 * c.hidden_size, true);
  const [q, k, v] = g.opN('Split', [qkv, g.int64([c.hidden_size, c.hidden_size, c.hidden_size])], 3, { axis: { i: -1 } });
  // Rotary per head over [N, H, D] (cos/sin [N, 1, D] broadcast), back to [N, H*D].
  const rotate = (y: string) => reshape(g, applyRotary(g, reshape(g, y, [0, c.num_heads, d]), unsqueeze(g, cos, [1]), unsqueeze(g, sin, [1]), d), [0, c.hidden_size]);
  return linear(g, core(rotate(q!), rotate(k!), v!), `${prefix}.proj`, c.hidden_size, c.hidden_size, true);
}

/** Dense attention over all patches with an additive [1,N,N] bias (small models and training: N is a few hundred). */
function denseCore(g: Graph, c: VisionConfig, bias: string): AttentionCore {
  const d = c.hidden_size / c.num_heads;
  const heads = (y: string) => transpose(g, reshape(g, y, [-1, c.num_heads, d]), [1, 0, 2]); // [H,N,D]
  return (q, k, v) => {
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [heads(q), transpose(g, heads(k), [0, 2, 1])]), g.scalarFloat(1 / Math.sqrt(d))]), bias]);
    const ctx = g.op('MatMul', [g.op('Softmax', [scores], { axis: { i: -1 } }), heads(v)]); // [H,N,D]
    return reshape(g, transpose(g, ctx, [1, 0, 2]), [-1, c.hidden_size]);
  };
}

/**
 * Where each patch of ONE visual input sits when its frames are cut into attention windows of
 * `span` x `span` patches (Qwen2.5-VL's window: window_size / patch_size), each window padded to
 * span² slots: slot = window * span² + position in window. Windows are counted per frame, row-major,
 * from the frame's top-left corner, as transformers' get_window_index lays them out.
 */
function windowSlots(g: Graph, layout: PatchLayout, span: number): { slots: string; windows: string; frames: string } {
  const s = g.scalarInt64(span);
  const ceilDiv = (x: string) => g.op('Div', [g.op('Add', [x, g.scalarInt64(span - 1)]), s]);
  const first = (x: string) => g.op('Gather', [x, g.scalarInt64(0)], { axis: { i: 0 } });
  const winCols = ceilDiv(first(layout.width));
  const perFrame = g.op('Mul', [ceilDiv(first(layout.height)), winCols]);
  const window = g.op('Add', [
    g.op('Mul', [layout.frame, perFrame]),
    g.op('Add', [g.op('Mul', [g.op('Div', [layout.row, s]), winCols]), g.op('Div', [layout.col, s])]),
  ]);
  const within = g.op('Add', [g.op('Mul', [g.op('Mod', [layout.row, s]), s]), g.op('Mod', [layout.col, s])]);
  const slots = g.op('Add', [g.op('Mul', [window, g.scalarInt64(span * span)]), within]);
  const frames = first(layout.frames);
  return { slots, windows: g.op('Mul', [frames, perFrame]), frames };
}

/**
 * Windowed attention without an N x N matrix: q, k, v are scattered into padded windows
 * [W, H, span², D], attend within each window (padding slots masked as keys), and are gathered back.
 * Memory grows with N x span², not N².
 */
function windowCore(g: Graph, c: VisionConfig, slots: string, windows: string, span: number): AttentionCore {
  const d = c.hidden_size / c.num_heads;
  const area = span * span;
  const rows = g.op('Mul', [windows, g.scalarInt64(area)]);
  const index = unsqueeze(g, slots, [1]); // [N,1]
  const padded = (width: number) => g.op('ConstantOfShape', [g.op('Concat', [unsqueeze(g, rows, [0]), g.int64([width])], { axis: { i: 0 } })], { value: { t: { dtype: 'float32', dims: [1], data: new Float32Array([0]) } } });
  const ones = g.op('ConstantOfShape', [g.op('Shape', [slots])], { value: { t: { dtype: 'float32', dims: [1], data: new Float32Array([1]) } } });
  const occupied = g.op('ScatterND', [g.op('Reshape', [padded(1), g.int64([-1])]), index, ones]); // [W*area]
  const keyBias = reshape(g, maskToBias(g, g.op('Greater', [occupied, g.scalarFloat(0.5)])), [-1, 1, 1, area]); // [W,1,1,area]
  const zeros = padded(c.hidden_size); // one [W*area, hidden] zero tensor, scattered into for q, k and v of every block
  const toWindows = (y: string) => transpose(g, reshape(g, g.op('ScatterND', [zeros, index, y]), [-1, area, c.num_heads, d]), [0, 2, 1, 3]);
  return (q, k, v) => {
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [toWindows(q), transpose(g, toWindows(k), [0, 1, 3, 2])]), g.scalarFloat(1 / Math.sqrt(d))]), keyBias]);
    const ctx = g.op('MatMul', [g.op('Softmax', [scores], { axis: { i: -1 } }), toWindows(v)]); // [W,H,area,D]
    const flat = reshape(g, transpose(g, ctx, [0, 2, 1, 3]), [-1, c.hidden_size]); // [W*area, H*D]
    return g.op('Gather', [flat, slots], { axis: { i: 0 } });
  };
}

/**
 * Full attention within each frame of ONE visual input (its frames have one size), as ONNX
 * Runtime's MultiHeadAttention over [frames, patches per frame, H*D]: with no mask it runs its
 * flash-attention kernel on CPU, so a 20,000-patch image never materialises the scores.
 */
function frameCore(g: Graph, c: VisionConfig, frames: string): AttentionCore {
  const shape = g.op('Concat', [unsqueeze(g, frames, [0]), g.int64([-1, c.hidden_size])], { axis: { i: 0 } });
  return (q, k, v) => {
    const [out] = g.opN('MultiHeadAttention', [g.op('Reshape', [q, shape]), g.op('Reshape', [k, shape]), g.op('Reshape', [v, shape])], 1,
      { num_heads: { i: c.num_heads } }, 'mha', 'com.microsoft');
    return reshape(g, out!, [-1, c.hidden_size]);
  };
}

/**
 * vision_encoder.onnx: pixel_values [N, C*tp*p*p], image_grid_thw [n,3] -> image_features [N/m², text hidden].
 * Qwen2.5-VL vision tower: linear patch embedding (the Conv3d with stride = kernel), RMSNorm blocks
 * with 2-D rotary attention (windowed except in fullatt_block_indexes) and SwiGLU MLPs, then the
 * patch merger (RMSNorm, concatenate each m×m group, MLP with GELU).
 * With `per_input_attention` the graph takes one visual input per run (any number of frames of one
 * size) and computes attention per window and per frame, never as a patches x patches matrix.
 */
export function buildVisionGraph(c: VisionConfig, floatType: 'float32' | 'float64' = 'float32'): Graph {
  const g = new Graph('vision_encoder', floatType);
  const pixels = g.input('pixel_values', floatType, ['num_patches', patchDim(c)]);
  const grid = g.input('image_grid_thw', 'int64', ['num_images', 3]);
  const layout = patchLayout(g, pixels, grid, c.spatial_merge_size);
  const [cos, sin] = visionCosSin(g, layout, c.hidden_size / c.num_heads);
  const span = c.window_size / c.patch_size;
  let cores: { full: AttentionCore; window: AttentionCore };
  if (c.per_input_attention) {
    const { slots, windows, frames } = windowSlots(g, layout, span);
    cores = { full: frameCore(g, c, frames), window: windowCore(g, c, slots, windows, span) };
  } else {
    const biases = visionBiases(g, layout, span);
    cores = { full: denseCore(g, c, biases.full), window: denseCore(g, c, biases.window) };
  }
  let x = linear(g, pixels, 'visual.patch_embed.proj', patchDim(c), c.hidden_size, false);
  if (c.coordinate_frequencies) {
    const coords = coordinateFeatures(g, layout, c.coordinate_frequencies);
    x = g.op('Add', [x, linear(g, coords, 'visual.coordinate_embed.proj', 4 * c.coordinate_frequencies, c.hidden_size, false)]);
  }
  if (c.temporal_frequencies) {
    const times = temporalFeatures(g, layout, c.temporal_frequencies);
    x = g.op('Add', [x, linear(g, times, 'visual.temporal_embed.proj', 2 * c.temporal_frequencies, c.hidden_size, false)]);
  }
  for (let i = 0; i < c.depth; i++) {
    const p = `visual.blocks.${i}`;
    const core = c.fullatt_block_indexes.includes(i) ? cores.full : cores.window;
    x = g.op('Add', [x, visionAttention(g, rmsNorm(g, x, `${p}.norm1`, c.hidden_size, c.rms_norm_eps), `${p}.attn`, c, cos, sin, core)]);
    x = g.op('Add', [x, swiglu(g, rmsNorm(g, x, `${p}.norm2`, c.hidden_size, c.rms_norm_eps), `${p}.mlp`, c.hidden_size, c.intermediate_size, true)]);
  }
  const groupDim = c.hidden_size * c.spatial_merge_size * c.spatial_merge_size;
  const grouped = reshape(g, rmsNorm(g, x, 'visual.merger.ln_q', c.hidden_size, c.rms_norm_eps), [-1, groupDim]);
  const features = linear(g, gelu(g, linear(g, grouped, 'visual.merger.mlp.0', groupDim, groupDim, true)), 'visual.merger.mlp.2', groupDim, c.out_hidden_size, true);
  g.output(features, 'image_features', floatType, ['num_tokens', c.out_hidden_size]);
  return g;
}
