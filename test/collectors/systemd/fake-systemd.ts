/**
 * A plain dbus-daemon with a small stand-in that owns org.freedesktop.systemd1, for what a real
 * systemd never sends or does: malformed bodies (malformed.test.ts), calls left unanswered
 * (clock.test.ts). Everything else runs against the real manager (user-manager.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Message, type MessageBus, Variant, sessionBus } from 'dbus-next'

export interface FakeSystemd {
  readonly busAddress: string
  /** Broadcast a signal from the stand-in (the collector's match rules decide whether it arrives). */
  emit(path: string, iface: string, member: string, signature: string, body: unknown[]): void
  /** Method calls the stand-in received and left unanswered (with `silent`). */
  readonly unanswered: readonly string[]
  stop(): Promise<void>
}

export interface FakeSystemdOptions {
  /** Members of the Manager interface the stand-in takes and never answers (a hung systemd). */
  readonly silent?: readonly string[]
}

const UNIT_PATH = '/org/freedesktop/systemd1/unit/demo_2eservice'

export async function startFakeSystemd(options: FakeSystemdOptions = {}): Promise<FakeSystemd> {
  const unanswered: string[] = []
  const dir = await mkdtemp(join(tmpdir(), 'tapio-fake-systemd-'))
  const busAddress = `unix:path=${join(dir, 'bus')}`
  let daemon: ChildProcess | undefined
  let bus: MessageBus | undefined
  const stop = async (): Promise<void> => {
    bus?.disconnect()
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = new Promise((r) => daemon?.once('exit', r))
      daemon.kill('SIGTERM')
      await gone
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    // setpriv: the daemon dies with the test process even if that is killed.
    daemon = spawn('setpriv', ['--pdeathsig', 'KILL', 'dbus-daemon', '--session', `--address=${busAddress}`, '--nofork', '--nopidfile', '--print-address=1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await new Promise<void>((resolve, reject) => {
      daemon?.once('error', reject)
      daemon?.once('exit', (code) => reject(new Error(`dbus-daemon exited (${code})`)))
      daemon?.stdout?.once('data', () => resolve())
    })
    const b = sessionBus({ busAddress })
    bus = b
    await new Promise<void>((resolve, reject) => {
      b.once('connect', () => resolve())
      b.once('error', reject)
    })
    await b.requestName('org.freedesktop.systemd1', 0)
    b.addMethodHandler((msg: Message): boolean => {
      const reply = (signature: string, body: unknown[]): boolean => {
        b.send(Message.newMethodReturn(msg, signature, body))
        return true
      }
      if (msg.interface === 'org.freedesktop.systemd1.Manager' && options.silent?.includes(String(msg.member))) {
        unanswered.push(String(msg.member))
        return true
      }
      if (msg.interface === 'org.freedesktop.systemd1.Manager' && msg.member === 'Subscribe') return reply('', [])
      if (msg.interface === 'org.freedesktop.systemd1.Manager' && msg.member === 'ListUnits') {
        return reply('a(ssssssouso)', [[['demo.service', 'demo', 'loaded', 'active', 'running', '', UNIT_PATH, 0, '', '/']]])
      }
      if (msg.interface === 'org.freedesktop.DBus.Properties' && msg.member === 'GetAll') {
        return reply('a{sv}', [{ NRestarts: new Variant('u', 0), Result: new Variant('s', 'success'), MainPID: new Variant('u', 42) }])
      }
      return false
    })
  } catch (err) {
    await stop()
    throw err
  }
  return {
    busAddress,
    unanswered,
    emit(path, iface, member, signature, body) {
      bus?.send(Message.newSignal(path, iface, member, signature, body))
    },
    stop,
  }
}

export { UNIT_PATH as FAKE_UNIT_PATH }
