import { parentPort, workerData } from 'node:worker_threads'
import { ConfigError, loadConfigFile } from './config.js'
import { builtinKinds, validators } from './registry.js'

/**
 * Reads and validates a config file on a worker thread (see `loadConfigFileOffThread`): a large
 * file must not stall the agent's event loop (probes, streams) while SIGHUP parses it.
 */
const { path } = workerData as { path: string }
try {
  const config = loadConfigFile(path, validators(builtinKinds()))
  parentPort?.postMessage({ ok: true, config })
} catch (e) {
  if (e instanceof ConfigError) parentPort?.postMessage({ ok: false, source: e.source, problems: e.problems })
  else parentPort?.postMessage({ ok: false, source: path, problems: [e instanceof Error ? e.message : String(e)] })
}
