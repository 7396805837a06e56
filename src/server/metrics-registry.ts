import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * prom-client's default Node collectors (the engine adds its own). Three default gauges are named
 * `*_total` (active handles, requests, resources), which `promtool check metrics` rejects as
 * gauges with a counter suffix; the same values are also exported without the suffix
 * (`nodejs_active_handles`, ...), so the `_total` copies are dropped.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  return registry;
}
