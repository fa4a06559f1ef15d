/**
 * A real systemd user manager and its real bus, for tests (see shared/notes/platform.md).
 *
 * - systemd --user runs in a private mount namespace with a tmpfs on /run/systemd holding
 *   /run/systemd/system, which it checks before it agrees to run.
 * - The bus is the stock dbus.socket + dbus.service pair (Debian package dbus-user-session):
 *   the manager listens on `unix:path=<runtime>/bus` (dbus-next cannot use abstract sockets) and
 *   starts dbus-daemon on the first connection. A dbus-daemon we started ourselves does not work:
 *   the manager's dbus.socket replaces its socket file, and the manager only attaches to (and, on
 *   SIGUSR1, reconnects to) a bus when dbus.socket and dbus.service are both running.
 * - killBus() SIGKILLs that dbus-daemon and stops dbus.socket (so the bus stays away; connecting
 *   is refused); restartBus() starts both again on the same path. The manager then reconnects to
 *   the new bus by itself (manager_recheck_dbus) and takes org.freedesktop.systemd1 again.
 *
 * Everything started is stopped by stop(), also when start fails half way. Should the test process
 * itself die, the parent-death signals (setpriv --pdeathsig, unshare --kill-child) still take the
 * manager down, and with it every unit it runs.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface ExecResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface UserManager {
  readonly runtimeDir: string
  readonly busPath: string
  readonly busAddress: string
  /** Environment for systemctl/systemd-run --user against this manager. */
  readonly env: NodeJS.ProcessEnv
  readonly systemdPid: number
  /** The main pid of the bus daemon (dbus.service), if it runs. */
  busDaemonPid(): Promise<number | undefined>
  systemctl(args: readonly string[]): Promise<ExecResult>
  systemdRun(args: readonly string[]): Promise<ExecResult>
  /** Unit properties via `systemctl --user show`. */
  show(unit: string, props: readonly string[]): Promise<Record<string, string>>
  /** SIGKILL the bus daemon, keep the bus away (dbus.socket stopped) and wait until it is gone. */
  killBus(): Promise<void>
  /** Start the bus again on the same path and wait until the manager is back on it. */
  restartBus(): Promise<void>
  stop(): Promise<void>
}

const SYSTEMD = '/lib/systemd/systemd'

export function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** Wait up to graceMs for the child to exit by itself, then SIGKILL it. */
async function stopChild(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const done = exited(child)
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref())
  if ((await Promise.race([done, timer])) === 'timeout') {
    child.kill('SIGKILL')
    await done
  }
}

interface ProcId {
  readonly pid: number
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat): guards against pid reuse. */
  readonly start: string
  readonly comm: string
}

async function procId(pid: number): Promise<(ProcId & { ppid: number }) | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    return { pid, comm, ppid: Number(fields[1]), start: fields[19] ?? '' }
  } catch {
    return undefined
  }
}

/** Descendants of pid (by /proc ppid), so a manager killed the hard way leaves no unit behind. */
async function descendants(pid: number): Promise<ProcId[]> {
  const children = new Map<number, ProcId[]>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const p = await procId(Number(entry))
    if (!p) continue
    const list = children.get(p.ppid) ?? []
    list.push(p)
    children.set(p.ppid, list)
  }
  const out: ProcId[] = []
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c)
      walk(c.pid)
    }
  }
  walk(pid)
  return out
}

async function killIfSame(p: ProcId): Promise<void> {
  const now = await procId(p.pid)
  if (now?.start !== p.start) return
  try {
    process.kill(p.pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

export async function startUserManager(): Promise<UserManager> {
  const runtimeDir = await mkdtemp(join(tmpdir(), 'tapio-systemd-'))
  const busPath = join(runtimeDir, 'bus')
  const busAddress = `unix:path=${busPath}`
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: runtimeDir,
    XDG_RUNTIME_DIR: runtimeDir,
    XDG_CONFIG_HOME: join(runtimeDir, 'config'),
  }
  // Tools talk to the bus; the manager itself must not get the variable (it would then treat the
  // bus as someone else's and expose its API there before dbus.socket takes over the path).
  const toolEnv: NodeJS.ProcessEnv = { ...env, DBUS_SESSION_BUS_ADDRESS: busAddress }
  let systemd: ChildProcess | undefined
  const logs: string[] = []
  const capture = (tag: string, child: ChildProcess): void => {
    child.stdout?.on('data', (d: Buffer) => logs.push(`${tag}: ${d.toString()}`))
    child.stderr?.on('data', (d: Buffer) => logs.push(`${tag}: ${d.toString()}`))
  }

  // systemctl reaches the manager over its private socket, also while the bus is down.
  const systemctl = (args: readonly string[]): Promise<ExecResult> => run('systemctl', ['--user', ...args], toolEnv)
  const managerRunning = (): Promise<boolean> =>
    waitFor('systemd --user to finish starting', async () => {
      const r = await systemctl(['show', '--property=SystemState', '--value'])
      return /^(running|degraded)$/m.test(r.stdout) ? true : undefined
    })
  const managerOnBus = (): Promise<boolean> =>
    waitFor('org.freedesktop.systemd1 on the bus', async () => {
      const r = await run('busctl', ['--user', 'get-property', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'SystemState'], toolEnv, 5_000)
      return /"(running|degraded)"/.test(r.stdout) ? true : undefined
    })
  const busDaemonPid = async (): Promise<number | undefined> => {
    const r = await systemctl(['show', '--property=MainPID', '--value', 'dbus.service'])
    const pid = Number(r.stdout.trim())
    return pid > 0 ? pid : undefined
  }

  let managerPid: number | undefined
  const stop = async (): Promise<void> => {
    const pid = systemd?.pid
    const leftovers = pid !== undefined && systemd?.exitCode === null ? await descendants(pid) : []
    // SIGTERM makes a user manager stop its units and exit (unshare exits with it); whatever it
    // left behind is killed here.
    if (managerPid !== undefined) {
      try {
        process.kill(managerPid, 'SIGTERM')
      } catch {
        // already gone
      }
    }
    await stopChild(systemd, managerPid !== undefined ? 20_000 : 0)
    for (const p of leftovers) await killIfSame(p)
    await rm(runtimeDir, { recursive: true, force: true })
  }

  try {
    await mkdir(env.XDG_CONFIG_HOME as string, { recursive: true })
    // unshare blocks SIGTERM while it waits for its child, hence KILL as its parent-death signal;
    // --kill-child then hands the manager a TERM, which it answers by stopping its units.
    systemd = spawn(
      'setpriv',
      [
        '--pdeathsig', 'KILL',
        'unshare', '-m', '--propagation', 'private', '--kill-child=TERM',
        'sh', '-c', `mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && exec ${SYSTEMD} --user`,
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const unsharePid = systemd.pid as number
    capture('systemd', systemd)
    const early = new Promise<never>((_, reject) => {
      systemd?.once('exit', (code) => reject(new Error(`systemd --user exited (${code}): ${logs.join('')}`)))
      systemd?.once('error', reject)
    })
    early.catch(() => undefined)
    await Promise.race([managerRunning().then(managerOnBus), early])
    managerPid = await waitFor('the systemd --user process', async () => {
      const [child] = (await descendants(unsharePid)).filter((p) => p.comm === 'systemd')
      return child?.pid
    })
  } catch (err) {
    await stop()
    throw err
  }

  const systemdPid = managerPid as number
  return {
    runtimeDir,
    busPath,
    busAddress,
    env: toolEnv,
    systemdPid,
    busDaemonPid,
    systemctl,
    systemdRun: (args) => run('systemd-run', ['--user', ...args], toolEnv),
    async show(unit, props) {
      const r = await systemctl(['show', unit, ...props.map((p) => `--property=${p}`)])
      const out: Record<string, string> = {}
      for (const line of r.stdout.split('\n')) {
        const eq = line.indexOf('=')
        if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1)
      }
      return out
    },
    async killBus() {
      const pid = await busDaemonPid()
      if (pid === undefined) throw new Error('dbus.service has no main process')
      process.kill(pid, 'SIGKILL')
      await waitFor(`dbus-daemon ${pid} to be gone`, async () => ((await busDaemonPid()) === undefined ? true : undefined))
      // Without this the next connection attempt would socket-activate a new daemon at once.
      await systemctl(['stop', 'dbus.socket'])
    },
    async restartBus() {
      await systemctl(['reset-failed', 'dbus.socket', 'dbus.service'])
      const r = await systemctl(['start', 'dbus.socket', 'dbus.service'])
      if (r.code !== 0) throw new Error(`cannot start the bus again: ${r.stderr}`)
      await managerOnBus()
    },
    stop,
  }
}
