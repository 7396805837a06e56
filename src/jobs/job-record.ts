/** A training job as the admin API shows it and as it is stored (data/jobs/<id>/job.json). */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
export type JobType = 'sft' | 'rl';

export interface JobRecord {
  id: string;
  object: 'training.job';
  type: JobType;
  state: JobState;
  created_at: number;
  started_at?: number;
  finished_at?: number;
  /** Steps done and planned. */
  step: number;
  total_steps: number;
  progress: number;
  /** Seconds to go, estimated from this run's step rate. */
  eta_s?: number;
  /** The latest step's metrics (loss; RL: reward parts, accuracy, RaPR...). */
  metrics?: Record<string, number>;
  error?: string;
  /** Name of the model the job exports; activate it with POST /admin/v1/models/{id}/activate. */
  model?: string;
  /** The training config the job runs (its run folder is the job folder). */
  config: Record<string, unknown>;
}

export const TERMINAL: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

/** Messages from the job's child process. */
export type WorkerMessage =
  | { type: 'step'; step: number; metrics: Record<string, number> }
  /** Reply to a cancel: the last step finished when it arrived (the job stops after the one in progress). */
  | { type: 'cancelling'; step: number }
  | { type: 'done'; state: 'succeeded' | 'cancelled'; modelDir?: string }
  | { type: 'failed'; error: string };
