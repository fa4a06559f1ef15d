import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ip, KernelObjects, suffix } from '../collectors/cni/helpers.js'
import { run, uniqueShell } from '../collectors/ebpf/helpers.js'
import { consumerLock } from './lockfile.js'

/**
 * The package as its users get it: `npm pack` (with its prepack: native addons, tsc) in a clean
 * copy of this checkout, the tarball installed into a fresh project by `npm ci --offline`, a strict
 * TypeScript program importing every entry point type-checked and run as root against the
 * installed copy. No registry: the consumer's lock is derived from this repository's, so the npm
 * cache that `npm ci` of this repository filled holds every dependency.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const repoPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string
  version: string
  devDependencies: Record<string, string>
}
const work = mkdtempSync(join(tmpdir(), 'tapio-pack-'))
const stage = join(work, 'stage')
const consumer = join(work, 'consumer')
const tarballName = `${repoPkg.name}-${repoPkg.version}.tgz`
const kernel = new KernelObjects()
const cleanups: (() => void)[] = []
let child: ChildProcess | undefined

function sh(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 240_000 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}: ${r.stderr.slice(-4000)}${r.stdout.slice(-2000)}`)
  return r.stdout
}

/** Tracked and new (not ignored) files of this checkout, plus the built addons, with their mtimes. */
function copyCheckout(): void {
  const files = sh('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], root).split('\0').filter((f) => f !== '')
  for (const f of files) {
    const from = join(root, f)
    if (!existsSync(from)) continue // deleted in the work tree, not yet committed
    mkdirSync(dirname(join(stage, f)), { recursive: true })
    cpSync(from, join(stage, f), { preserveTimestamps: true })
  }
  // Built addons and the BPF skeleton: prepack rebuilds them only if they are stale or do not load.
  for (const built of ['native/build/Release/tapio_bpf.node', 'native/build/Release/tapio_netlink.node', 'native/bpf/.out']) {
    if (existsSync(join(root, built))) cpSync(join(root, built), join(stage, built), { recursive: true, preserveTimestamps: true })
  }
  symlinkSync(join(root, 'node_modules'), join(stage, 'node_modules'))
}

interface TarEntry {
  readonly type: string
  readonly size: number
  readonly path: string
}

function listTarball(path: string): TarEntry[] {
  return execFileSync('tar', ['-tvzf', path], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.split(/\s+/)
      return { type: (f[0] as string)[0] as string, size: Number(f[2]), path: (f[5] as string).replace(/^package\//, '') }
    })
}

let entries: TarEntry[] = []
let tarballBytes = 0

beforeAll(() => {
  copyCheckout()
  sh('npm', ['pack', '--pack-destination', work, '--loglevel=warn'], stage)
  tarballBytes = readFileSync(join(work, tarballName)).length
  entries = listTarball(join(work, tarballName))

  mkdirSync(consumer)
  copyFileSync(join(work, tarballName), join(consumer, tarballName))
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', join(work, tarballName), 'package/package.json'], { encoding: 'utf8' })) as {
    name: string
  }
  const dependencies = {
    [repoPkg.name]: `file:${tarballName}`,
    effect: repoPkg.devDependencies.effect as string,
    xstate: repoPkg.devDependencies.xstate as string,
  }
  const devDependencies = {
    typescript: repoPkg.devDependencies.typescript as string,
    '@types/node': repoPkg.devDependencies['@types/node'] as string,
    'fast-check': repoPkg.devDependencies['fast-check'] as string,
  }
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies, devDependencies }, null, 2))
  const lock = consumerLock({
    repoLockPath: join(root, 'package-lock.json'),
    name: 'consumer',
    dependencies,
    devDependencies,
    tarball: { path: join(consumer, tarballName), fileName: tarballName, manifest },
  })
  writeFileSync(join(consumer, 'package-lock.json'), JSON.stringify(lock, null, 2))
  sh('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], consumer)

  mkdirSync(join(consumer, 'src'))
  copyFileSync(join(root, 'test/package/consumer/main.ts'), join(consumer, 'src/main.ts'))
  writeFileSync(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        types: ['node'],
        strict: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: true,
        outDir: 'out',
        rootDir: 'src',
      },
      include: ['src'],
    }),
  )
}, 600_000)

afterAll(() => {
  child?.kill('SIGKILL')
  for (const c of cleanups.splice(0)) c()
  const leftover = kernel.cleanup()
  rmSync(work, { recursive: true, force: true })
  expect(leftover).toEqual([])
})

describe('the installed package', () => {
  it('the tarball carries dist/src, the addons as plain files, their sources and build script; no tests, objects or Makefiles', () => {
    const paths = entries.map((e) => e.path)
    console.log(`tarball ${tarballName}: ${(tarballBytes / 1024).toFixed(1)} kB, ${entries.filter((e) => e.type !== 'd').length} files`)
    for (const addon of ['native/build/Release/tapio_bpf.node', 'native/build/Release/tapio_netlink.node']) {
      const e = entries.find((x) => x.path === addon)
      expect(e?.type, `${addon} must be a regular file (npm does not extract hard links)`).toBe('-')
      expect(e?.size).toBeGreaterThan(10_000)
    }
    for (const needed of ['scripts/build-native.sh', 'native/binding.gyp', 'native/src/bpf_session.cc', 'native/src/netlink_socket.cc', 'native/bpf/tapio.bpf.c', 'native/bpf/prebuild.sh', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/public/ebpf.js', 'dist/machines/index.js', 'src/inspector/static/index.html', 'README.md'])
      expect(paths, needed).toContain(needed)
    expect(paths.filter((p) => p.startsWith('dist/test/') || p.startsWith('dist/bench/') || p.startsWith('dist/examples/'))).toEqual([])
    expect(paths.filter((p) => /\.(o|mk|map|d)$/.test(p) || /(^|\/)Makefile$/.test(p) || p.includes('obj.target') || p.includes('/.deps/'))).toEqual([])
  })

  it('installs offline with the shipped addons in place', () => {
    const installed = join(consumer, 'node_modules', repoPkg.name)
    for (const addon of ['tapio_bpf', 'tapio_netlink']) expect(existsSync(join(installed, 'native/build/Release', `${addon}.node`)), addon).toBe(true)
    const du = (dir: string) => (existsSync(join(consumer, dir)) ? Number(execFileSync('du', ['-sb', dir], { cwd: consumer, encoding: 'utf8' }).split('\t')[0]) : 0)
    const all = du('node_modules')
    // What a production install weighs: without the consumer's own dev tools.
    const devTools = ['typescript', '@typescript', '@types/node', 'fast-check', 'pure-rand'].reduce((n, d) => n + du(`node_modules/${d}`), 0)
    const production = all - devTools
    console.log(`consumer node_modules: ${(all / 1e6).toFixed(1)} MB in all, ${(production / 1e6).toFixed(1)} MB without typescript, @types/node and fast-check`)
    // The largest installed packages (scoped ones as one), for docs/performance.md.
    const top = readdirSync(join(consumer, 'node_modules'))
      .filter((d) => !d.startsWith('.'))
      .map((d) => [d, du(`node_modules/${d}`)] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
    console.log(`largest: ${top.map(([d, n]) => `${d} ${(n / 1e6).toFixed(1)} MB`).join(', ')}`)
    expect(production).toBeGreaterThan(0)
  })

  it('a strict program importing every entry point type-checks against the installed package', () => {
    const r = spawnSync(join(consumer, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: consumer, encoding: 'utf8' })
    expect(`${r.stdout}${r.stderr}`).toBe('')
    expect(r.status).toBe(0)
    expect(existsSync(join(consumer, 'out/main.js'))).toBe(true)
  })

  it('run as root: the installed eBPF collector reports a uniquely named exec, the installed CNI collector a new veth', async () => {
    expect(process.getuid?.(), 'the eBPF and CNI collectors need root; run the suite as root (.ci/run)').toBe(0)
    const program = uniqueShell()
    cleanups.push(program.cleanup)
    const veth = kernel.link(`tpk${suffix()}`)
    const proc = spawn(process.execPath, ['out/main.js', program.name, veth], { cwd: consumer, stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    let stdout = ''
    let stderr = ''
    proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
    let done = false
    void exited.then(() => (done = true))
    const deadline = Date.now() + 60_000
    while (!stdout.includes('READY\n') && !done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(stdout, stderr).toContain('READY\n')
    // Deleting one end of a veth pair deletes both: only the first is registered for cleanup.
    ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`)
    while (!done && Date.now() < deadline) {
      await run(program.path, ['-c', 'exit 0'])
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(await exited, stderr).toBe(0)
    const out = JSON.parse(stdout.trim().split('\n').at(-1) as string) as {
      exec: { comm: string; filename: string; pid: number }
      link: { name: string; kind?: string }
      invalid: number
      ebpfReason: string
      inspectorPage: number
      surface: Record<string, unknown>
    }
    expect(out.exec.comm).toBe(program.name)
    expect(out.exec.filename).toBe(program.path)
    expect(out.link).toMatchObject({ name: veth, kind: 'veth' })
    expect(out.invalid).toBe(0)
    // The addon came from the installed copy, not from this checkout.
    expect(out.ebpfReason).toContain(join(consumer, 'node_modules', repoPkg.name, 'native/build/Release/tapio_bpf.node'))
    expect(out.inspectorPage).toBe(200)
    expect(out.surface).toEqual({ machines: ['collector', 'supervisor'], kubernetes: true, systemd: true, nats: true, testing: true })
  })

  it('a peer outside its range fails the import at once, naming it and what to install', () => {
    // The installed effect relabelled as 3.x: what a project pinned to Effect 3 would resolve.
    const manifestPath = join(consumer, 'node_modules/effect/package.json')
    const original = readFileSync(manifestPath, 'utf8')
    writeFileSync(manifestPath, JSON.stringify({ ...(JSON.parse(original) as object), version: '3.19.2' }))
    try {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', `await import('${repoPkg.name}')`], { cwd: consumer, encoding: 'utf8', timeout: 30_000 })
      expect(r.status).toBe(1)
      expect(r.stderr).toContain('IncompatiblePeerError')
      expect(r.stderr).toMatch(/effect 3\.19\.2 \(.*node_modules\/effect\/package\.json\) is outside ~4\.1\.0: npm install effect@"~4\.1\.0"/)
    } finally {
      writeFileSync(manifestPath, original)
    }
  })

  it('an addon that does not load is rebuilt by the install script; when that fails, the collector says why', () => {
    const installed = join(consumer, 'node_modules', repoPkg.name)
    const addon = join(installed, 'native/build/Release/tapio_netlink.node')
    // What another architecture's file looks like to this Node: it does not load.
    writeFileSync(addon, 'not an ELF object\n')
    const cniStart = `import { CniCollector } from '${repoPkg.name}/cni'\nconst c = new CniCollector()\ntry { await c.start(AbortSignal.timeout(10000)); console.log('started'); await c.stop() } catch (e) { console.log(e.message) }\n`

    // A failed rebuild (the compiler fails) does not fail the install, and leaves its reason.
    const failed = spawnSync('npm', ['rebuild', repoPkg.name, '--offline', '--foreground-scripts'], { cwd: consumer, encoding: 'utf8', env: { ...process.env, CXX: '/bin/false' }, timeout: 300_000 })
    expect(failed.status, failed.stderr).toBe(0)
    expect(`${failed.stdout}${failed.stderr}`).toMatch(/build-native: tapio_netlink is unavailable: .*Error 1 \(full log: /)
    const said = spawnSync(process.execPath, ['--input-type=module', '-e', cniStart], { cwd: consumer, encoding: 'utf8', timeout: 60_000 })
    expect(said.stdout).toMatch(/native addon .*tapio_netlink\.node failed to load .*rebuild it with `bash .*\/scripts\/build-native\.sh`.*\(tapio_netlink could not be rebuilt on x86_64 with Node v\d+\.\d+\.\d+: .*Error 1/)

    // With a working toolchain the same hook rebuilds it, and the collector runs.
    const rebuilt = spawnSync('npm', ['rebuild', repoPkg.name, '--offline', '--foreground-scripts'], { cwd: consumer, encoding: 'utf8', timeout: 300_000 })
    expect(rebuilt.status, rebuilt.stderr).toBe(0)
    expect(`${rebuilt.stdout}${rebuilt.stderr}`).toContain('build-native: tapio_netlink rebuilt')
    expect(existsSync(join(installed, 'native/build/tapio_netlink.failure.txt'))).toBe(false)
    const runs = spawnSync(process.execPath, ['--input-type=module', '-e', cniStart], { cwd: consumer, encoding: 'utf8', timeout: 60_000 })
    expect(runs.stdout.trim()).toBe('started')
  }, 600_000)
})
