import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { WEIGHT_DTYPES } from '../model/onnx/weight-precision.js';
import { ENGINE_DEFAULTS } from '../engine/engine-config.js';

/**
 * Server configuration. Precedence: CLI flags > environment (PIXELREASONER_*) > config file > defaults.
 * Every field is documented in the README's configuration table.
 */
export const ServerConfigSchema = z.object({
  host: z.string().default('0.0.0.0'),
  port: z.coerce.number().int().min(0).max(65535).default(8000),
  /** gRPC port (PixelReasoner, health, reflection); -1 disables gRPC. */
  grpcPort: z.coerce.number().int().min(-1).max(65535).default(50051),
  /** Model directory or Hugging Face snapshot; empty = the bundled default model. */
  model: z.string().default(''),
  /** Where snapshots are converted to (default: <dataDir>/model-cache). */
  modelCache: z.string().default(''),
  /** Weight precision of a snapshot's conversion (default: q8; see the README). */
  modelDtype: z.enum(WEIGHT_DTYPES).optional(),
  /** Name served in /v1/models and accepted in `model` (default: the model's own name). */
  servedModelName: z.string().default(''),
  maxModelLen: z.coerce.number().int().positive().default(4096),
  /** KV slots: sequences decoding at once (continuous batching). */
  maxNumSeqs: z.coerce.number().int().positive().default(ENGINE_DEFAULTS.maxNumSeqs),
  /** Prompt / tool-result tokens prefilled per engine step. */
  maxNumBatchedTokens: z.coerce.number().int().positive().default(ENGINE_DEFAULTS.maxNumBatchedTokens),
  /** Reuse the KV of prompt-opening text (system prompt, tool definitions) across requests. */
  enablePrefixCaching: z.preprocess((v) => (typeof v === 'string' ? v !== 'false' && v !== '0' : v), z.boolean()).default(ENGINE_DEFAULTS.enablePrefixCaching),
  /** Requests queued for a slot before new ones get 429. */
  maxWaiting: z.coerce.number().int().min(0).default(ENGINE_DEFAULTS.maxWaiting),
  /** Per-request deadline in ms (0 = none); past it the request is aborted. */
  requestTimeoutMs: z.coerce.number().int().min(0).default(300_000),
  /** max_tokens when the request gives none. */
  defaultMaxTokens: z.coerce.number().int().positive().default(512),
  maxToolCalls: z.coerce.number().int().min(0).default(4),
  maxImagesPerRequest: z.coerce.number().int().positive().default(8),
  maxFramesPerVideo: z.coerce.number().int().positive().default(32),
  /** Frames sampled uniformly from a video file (video_url). */
  videoFrames: z.coerce.number().int().positive().default(16),
  /** Directories whose files may be named in video_url (absolute paths or file:// URLs); empty = none. */
  allowedMediaDirs: z.array(z.string()).default([]),
  /** Largest video file (bytes) accepted from a data: URL. */
  maxVideoBytes: z.coerce.number().int().positive().default(50 * 1024 * 1024),
  /** Largest sum of width*height over all images and frames of one request. */
  maxTotalPixels: z.coerce.number().int().positive().default(100_000_000),
  /** Largest decoded image accepted (width*height). */
  maxImagePixels: z.coerce.number().int().positive().default(40_000_000),
  maxBodyBytes: z.coerce.number().int().positive().default(20 * 1024 * 1024),
  /** Hosts allowed for http(s) image URLs; empty = only data: URLs. */
  allowedMediaHosts: z.array(z.string()).default([]),
  /** Token for /admin/*; empty = admin routes are off. */
  adminToken: z.string().default(''),
  /** Bearer keys accepted on /v1/*; empty = no auth. */
  apiKeys: z.array(z.string()).default([]),
  threads: z.coerce.number().int().positive().optional(),
  /** Where training jobs, their checkpoints and models live. */
  dataDir: z.string().default('data'),
  /** ONNX Runtime threads of a training job (its share of the CPU; the job also runs at lower priority). */
  trainingThreads: z.coerce.number().int().positive().default(Math.max(1, Math.floor(availableParallelism() / 2))),
  /** Training jobs run at once; the others wait in the queue. */
  maxConcurrentJobs: z.coerce.number().int().positive().default(1),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type ServerConfig = z.infer<typeof ServerConfigSchema>;

const ENV: Record<string, keyof ServerConfig> = {
  PIXELREASONER_HOST: 'host',
  PIXELREASONER_PORT: 'port',
  PIXELREASONER_GRPC_PORT: 'grpcPort',
  PIXELREASONER_MODEL: 'model',
  PIXELREASONER_MODEL_CACHE: 'modelCache',
  PIXELREASONER_MODEL_DTYPE: 'modelDtype',
  PIXELREASONER_SERVED_MODEL_NAME: 'servedModelName',
  PIXELREASONER_MAX_MODEL_LEN: 'maxModelLen',
  PIXELREASONER_DEFAULT_MAX_TOKENS: 'defaultMaxTokens',
  PIXELREASONER_MAX_NUM_SEQS: 'maxNumSeqs',
  PIXELREASONER_MAX_NUM_BATCHED_TOKENS: 'maxNumBatchedTokens',
  PIXELREASONER_ENABLE_PREFIX_CACHING: 'enablePrefixCaching',
  PIXELREASONER_MAX_WAITING: 'maxWaiting',
  PIXELREASONER_REQUEST_TIMEOUT_MS: 'requestTimeoutMs',
  PIXELREASONER_MAX_TOOL_CALLS: 'maxToolCalls',
  PIXELREASONER_MAX_IMAGES_PER_REQUEST: 'maxImagesPerRequest',
  PIXELREASONER_MAX_FRAMES_PER_VIDEO: 'maxFramesPerVideo',
  PIXELREASONER_MAX_IMAGE_PIXELS: 'maxImagePixels',
  PIXELREASONER_MAX_TOTAL_PIXELS: 'maxTotalPixels',
  PIXELREASONER_VIDEO_FRAMES: 'videoFrames',
  PIXELREASONER_ALLOWED_MEDIA_DIRS: 'allowedMediaDirs',
  PIXELREASONER_MAX_BODY_BYTES: 'maxBodyBytes',
  PIXELREASONER_ALLOWED_MEDIA_HOSTS: 'allowedMediaHosts',
  PIXELREASONER_API_KEYS: 'apiKeys',
  PIXELREASONER_ADMIN_TOKEN: 'adminToken',
  PIXELREASONER_THREADS: 'threads',
  PIXELREASONER_DATA_DIR: 'dataDir',
  PIXELREASONER_TRAINING_THREADS: 'trainingThreads',
  PIXELREASONER_MAX_CONCURRENT_JOBS: 'maxConcurrentJobs',
  PIXELREASONER_LOG_LEVEL: 'logLevel',
};

const LISTS = new Set<keyof ServerConfig>(['allowedMediaHosts', 'allowedMediaDirs', 'apiKeys']);

export function resolveConfig(flags: Partial<Record<keyof ServerConfig, unknown>>, env: NodeJS.ProcessEnv, configFile?: string): ServerConfig {
  const fromFile = configFile ? (JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>) : {};
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') fromEnv[key] = LISTS.has(key) ? v.split(',').map((s) => s.trim()).filter(Boolean) : v;
  }
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return ServerConfigSchema.parse({ ...fromFile, ...fromEnv, ...defined });
}
