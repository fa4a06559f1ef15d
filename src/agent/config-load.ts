import { Worker } from 'node:worker_threads'
import { type AgentConfig, ConfigError } from './config.js'

type WorkerAnswer = { ok: true; config: AgentConfig } | { ok: false; source: string; problems: string[] }

/**
 * `loadConfigFile` with the built-in kinds, run on a worker thread; rejects with a ConfigError
 * naming every problem, like the synchronous one.
 */
export function loadConfigFileOffThread(path: string): Promise<AgentConfig> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./config-worker.js', import.meta.url), { workerData: { path } })
    let answered = false
    worker.once('message', (m: WorkerAnswer) => {
      answered = true
      if (m.ok) resolve(m.config)
      else reject(new ConfigError(m.source, m.problems))
      void worker.terminate()
    })
    worker.once('error', (e) => {
      answered = true
      reject(new ConfigError(path, [`config loader failed: ${e.message}`]))
    })
    worker.once('exit', (code) => {
      if (!answered) reject(new ConfigError(path, [`config loader exited (code ${code}) without an answer`]))
    })
  })
}
