import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Sequence } from './sequence.js';

/** Engine metrics, named after vLLM's (prefix `pixelreasoner_` instead of `vllm:`). */
export class EngineMetrics {
  readonly ttft: Histogram;
  readonly interToken: Histogram;
  readonly e2e: Histogram;
  readonly queueTime: Histogram;
  readonly running: Gauge;
  readonly waiting: Gauge;
  readonly paused: Gauge;
  readonly batchSize: Histogram;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly kvUsage: Gauge;
  readonly prefixQueries: Counter;
  readonly prefixHits: Counter;
  readonly toolCalls: Counter;
  readonly toolLatency: Histogram;
  readonly requests: Counter;

  constructor(registry: Registry) {
    const latency = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    const registers = [registry];
    this.ttft = new Histogram({ name: 'pixelreasoner_time_to_first_token_seconds', help: 'Time from arrival to the first generated token.', buckets: latency, registers });
    this.interToken = new Histogram({ name: 'pixelreasoner_inter_token_latency_seconds', help: 'Time between consecutive generated tokens of a request.', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers });
    this.e2e = new Histogram({ name: 'pixelreasoner_e2e_request_latency_seconds', help: 'Time from arrival to finish.', buckets: latency, registers });
    this.queueTime = new Histogram({ name: 'pixelreasoner_request_queue_time_seconds', help: 'Time spent waiting for a KV slot.', buckets: latency, registers });
    this.running = new Gauge({ name: 'pixelreasoner_num_requests_running', help: 'Sequences holding a KV slot and not paused.', registers });
    this.waiting = new Gauge({ name: 'pixelreasoner_num_requests_waiting', help: 'Sequences queued for a KV slot.', registers });
    this.paused = new Gauge({ name: 'pixelreasoner_num_requests_paused', help: 'Sequences paused in a visual operation (holding their KV cache).', registers });
    this.batchSize = new Histogram({ name: 'pixelreasoner_iteration_batch_size', help: 'Sequences fed per engine step (decode rows plus prefill chunks).', buckets: [1, 2, 4, 8, 16, 32, 64], registers });
    this.promptTokens = new Counter({ name: 'pixelreasoner_prompt_tokens_total', help: 'Prompt tokens prefilled, tool-result turns included.', registers });
    this.generationTokens = new Counter({ name: 'pixelreasoner_generation_tokens_total', help: 'Tokens generated.', registers });
    this.kvUsage = new Gauge({ name: 'pixelreasoner_kv_cache_usage_perc', help: 'Fraction of KV-cache positions in use (0-1).', registers });
    this.prefixQueries = new Counter({ name: 'pixelreasoner_prefix_cache_queries_total', help: 'Prompt tokens looked up in the prefix cache (whole blocks of cacheable opening text).', registers });
    this.prefixHits = new Counter({ name: 'pixelreasoner_prefix_cache_hits_total', help: 'Prompt tokens whose KV came from the prefix cache.', registers });
    this.toolCalls = new Counter({ name: 'pixelreasoner_tool_calls_total', help: 'Visual operations by tool and outcome.', labelNames: ['tool', 'outcome'], registers });
    this.toolLatency = new Histogram({ name: 'pixelreasoner_tool_latency_seconds', help: 'Time a sequence spent paused in a visual operation.', labelNames: ['tool'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    this.requests = new Counter({ name: 'pixelreasoner_request_success_total', help: 'Finished requests by finish_reason.', labelNames: ['finished_reason'], registers });
  }

  /** A generated token: TTFT for the first, inter-token latency after. */
  tokenGenerated(seq: Sequence): void {
    const now = performance.now();
    if (seq.firstTokenAt === undefined) {
      seq.firstTokenAt = now;
      this.ttft.observe((now - seq.arrivedAt) / 1000);
    } else this.interToken.observe((now - seq.lastTokenAt!) / 1000);
    seq.lastTokenAt = now;
    this.generationTokens.inc();
  }

  finished(seq: Sequence): void {
    this.e2e.observe((performance.now() - seq.arrivedAt) / 1000);
    this.requests.inc({ finished_reason: seq.finishReason ?? 'stop' });
  }

  gauges(counts: { running: number; waiting: number; paused: number }, kvUsage: number): void {
    this.running.set(counts.running);
    this.waiting.set(counts.waiting);
    this.paused.set(counts.paused);
    this.kvUsage.set(kvUsage);
  }
}
