#!/usr/bin/env node
/**
 * Kubernetes exec probe: `node probe.js ready|live [--url URL] [--token T]` exits 0 when the
 * agent answers /readyz or /healthz with 200, 1 otherwise, 2 on bad usage. Its own entry point
 * (also reachable as `tapio-agent probe`) because the kubelet starts it every few seconds: this
 * module imports nothing of the agent, so a probe costs a bare Node start, not the whole CLI's.
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

export const DEFAULT_AGENT_URL = 'http://127.0.0.1:8497'

export interface ProbeResult {
  readonly code: 0 | 1 | 2
  readonly message: string
}

export async function probeAgent(which: string | undefined, url = DEFAULT_AGENT_URL, token?: string, timeoutMs = 5000): Promise<ProbeResult> {
  const path = which === 'ready' ? '/readyz' : which === 'live' ? '/healthz' : undefined
  if (!path) return { code: 2, message: `tapio-agent probe: expected \`ready\` or \`live\`, got ${JSON.stringify(which ?? '')}` }
  const target = `${url}${path}`
  try {
    // Bounded: a wedged agent must fail the probe, not hang it until the kubelet's own timeout.
    const res = await fetch(target, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(timeoutMs) })
    const body = await res.text()
    if (res.ok) return { code: 0, message: `${which}: ${body}` }
    return { code: 1, message: `tapio-agent probe ${which}: ${target}: HTTP ${res.status} ${body}` }
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e)
    return { code: 1, message: `tapio-agent probe ${which}: cannot reach ${target}: ${cause}` }
  }
}

export async function probeMain(argv: readonly string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options: { url: { type: 'string' }, token: { type: 'string' } }, allowPositionals: true, strict: true })
  } catch (e) {
    process.stderr.write(`tapio-agent probe: ${(e as Error).message}\n`)
    return 2
  }
  const r = await probeAgent(parsed.positionals[0], parsed.values.url, parsed.values.token)
  ;(r.code === 0 ? process.stdout : process.stderr).write(`${r.message}\n`)
  return r.code
}

function invokedDirectly(): boolean {
  const script = process.argv[1]
  if (!script) return false
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (invokedDirectly()) process.exitCode = await probeMain(process.argv.slice(2))
