import type { ServerConfig } from '../server/config.js';
import { parseFlags } from './flags.js';

/** `pixelreasoner serve`'s flags (the arguments after `serve`): resolveConfig's flag layer and the --config file. */
export function parseServeArgs(argv: string[]): { flags: Partial<Record<keyof ServerConfig, unknown>>; configFile: string | undefined } {
  const { values } = parseFlags({
    args: argv,
    options: {
      model: { type: 'string' }, port: { type: 'string' }, 'grpc-port': { type: 'string' }, host: { type: 'string' }, config: { type: 'string' },
      'served-model-name': { type: 'string' }, 'max-model-len': { type: 'string' }, 'default-max-tokens': { type: 'string' },
      'max-tool-calls': { type: 'string' }, 'api-key': { type: 'string', multiple: true }, threads: { type: 'string' },
      'log-level': { type: 'string' }, 'admin-token': { type: 'string' }, 'max-num-seqs': { type: 'string' },
      'data-dir': { type: 'string' }, 'training-threads': { type: 'string' }, 'max-num-batched-tokens': { type: 'string' },
      'no-enable-prefix-caching': { type: 'boolean' }, dtype: { type: 'string' }, 'model-cache': { type: 'string' },
    },
  });
  return {
    flags: {
      model: values.model, port: values.port, grpcPort: values['grpc-port'], host: values.host, servedModelName: values['served-model-name'],
      maxModelLen: values['max-model-len'], defaultMaxTokens: values['default-max-tokens'], maxToolCalls: values['max-tool-calls'],
      apiKeys: values['api-key'], threads: values.threads, logLevel: values['log-level'], adminToken: values['admin-token'],
      maxNumSeqs: values['max-num-seqs'], dataDir: values['data-dir'], trainingThreads: values['training-threads'],
      maxNumBatchedTokens: values['max-num-batched-tokens'], enablePrefixCaching: values['no-enable-prefix-caching'] ? false : undefined,
      modelDtype: values.dtype, modelCache: values['model-cache'],
    },
    configFile: values.config,
  };
}
