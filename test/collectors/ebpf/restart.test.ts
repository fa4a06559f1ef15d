import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { defaultAddonPath } from '../../../src/native/bpf-addon.js'
import { compileChild } from './helpers.js'

describe('ebpf collector: 50 stop/start cycles', () => {
  it('leaves no BPF programs, links, fds or threads behind, and the process exits by itself', async () => {
    const script = compileChild('restart-child')
    const child = spawn(process.execPath, [script, defaultAddonPath(), '50'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
    })
    let timer: NodeJS.Timeout | undefined
    const exit = await new Promise<number | string>((resolve) => {
      timer = setTimeout(() => resolve('did not exit by itself within 150 s'), 150_000)
      child.on('exit', (code) => resolve(code ?? 'killed'))
    }).finally(() => {
      clearTimeout(timer)
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    expect(exit).toBe(0)
    const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
      before: { fds: number; bpfFds: number; threads: number }
      after: { fds: number; bpfFds: number; threads: number }
      programsSeen: number
      linksSeen: number
      programsStillLoaded: number[]
      linksStillLive: number[]
    }
    // 6 programs (5 event programs and the cgroup announcer) x 50 starts, each with its own ids, all gone again.
    expect(r.programsSeen).toBe(300)
    expect(r.linksSeen).toBe(300)
    expect(r.programsStillLoaded).toEqual([])
    expect(r.linksStillLive).toEqual([])
    expect(r.after.bpfFds).toBe(0)
    expect(r.after.fds).toBe(r.before.fds)
    expect(r.after.threads).toBe(r.before.threads)
  }, 240_000)
})
