import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CLI, ROOT } from './support.js'

/** A CLI error longer than a pipe holds, into a pipe whose reader is late: nothing is cut. */

const dir = mkdtempSync(join(tmpdir(), 'tapio-cli-exit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('fail() on a pipe', () => {
  it('writes all of a 200 KB check-config report before exiting, though stderr is read late', { timeout: 60_000 }, async () => {
    const lines = ['collectors:']
    for (let i = 0; i < 3000; i++) lines.push(`  c${i}: { kind: synthetic, rate: -1 }`)
    const cfg = join(dir, 'many.yaml')
    writeFileSync(cfg, `${lines.join('\n')}\n`)
    const child = spawn(process.execPath, [CLI, 'check-config', '--config', cfg], { cwd: ROOT })
    // The reader comes late: the report does not fit the pipe meanwhile.
    child.stderr.pause()
    let text = ''
    child.stderr.on('data', (d: Buffer) => (text += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    const closed = new Promise<void>((resolve) => child.stderr.once('close', () => resolve()))
    await new Promise((r) => setTimeout(r, 1500))
    child.stderr.resume()
    await closed
    const code = await exited
    expect(code).toBe(2)
    const problems = text.split('\n').filter((l) => /^ {2}- collectors\.c\d+\.rate: /.test(l))
    console.log(JSON.stringify({ failReport: { bytes: text.length, problems: problems.length } }))
    expect(problems.length).toBe(3000)
    expect(text.endsWith('\n')).toBe(true)
  })
})
