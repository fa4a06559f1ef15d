import { readFileSync } from 'node:fs'

/**
 * The Node.js flags `tapio-agent` runs with: those on the CLI's shebang line
 * (`#!/usr/bin/env -S node --flag ...`), so a benchmark that spawns `node cli.js` measures the
 * agent as the installed command runs it.
 */
export function agentNodeFlags(cliPath: string): string[] {
  const first = readFileSync(cliPath, 'utf8').split('\n', 1)[0] ?? ''
  const m = /^#!\/usr\/bin\/env(?: -S)? node(.*)$/.exec(first)
  if (!m) throw new Error(`${cliPath}: unexpected first line ${JSON.stringify(first)}`)
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean)
}
