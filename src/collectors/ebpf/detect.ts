import { existsSync, readFileSync } from 'node:fs'
import * as Result from 'effect/Result'
import { type BpfAddon, BpfSession, BpfUnavailableError, loadBpfAddon } from '../../native/bpf-addon.js'
import { type EbpfConfig, parseEbpfConfig } from './config.js'

const TRACEFS = '/sys/kernel/tracing'
const TRACEFS_EVENTS = ['/sys/kernel/tracing/events', '/sys/kernel/debug/tracing/events']
const CAP_SYS_ADMIN = 21n
const CAP_PERFMON = 38n
const CAP_BPF = 39n

/** Effective capabilities of this process, from /proc/self/status. */
export function effectiveCapabilities(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)
  return m?.[1] ? BigInt(`0x${m[1]}`) : 0n
}

export function hasBpfCapabilities(caps: bigint): boolean {
  const has = (bit: bigint) => (caps & (1n << bit)) !== 0n
  return has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

export function tracefsMounted(): boolean {
  return TRACEFS_EVENTS.some((p) => existsSync(p))
}

/**
 * Everything start() needs before touching the kernel: the addon, privileges, BTF, tracefs
 * (mounted here when allowed). Fails with the first missing piece and how to fix it.
 */
export function preflight(config: EbpfConfig): Result.Result<BpfAddon, BpfUnavailableError> {
  const loaded = loadBpfAddon(config.addonPath)
  if (Result.isFailure(loaded)) return loaded
  const addon = loaded.success
  const caps = effectiveCapabilities()
  if (!hasBpfCapabilities(caps)) {
    return Result.fail(
      new BpfUnavailableError(
        'permission',
        `needs root or CAP_BPF + CAP_PERFMON (effective capabilities 0x${caps.toString(16)}); run the agent as root or grant them`,
      ),
    )
  }
  if (!existsSync('/sys/kernel/btf/vmlinux')) {
    return Result.fail(
      new BpfUnavailableError(
        'no_btf',
        'the kernel exposes no BTF (/sys/kernel/btf/vmlinux missing); CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y',
      ),
    )
  }
  if (!tracefsMounted()) {
    if (!config.mountTracefs) {
      return Result.fail(
        new BpfUnavailableError(
          'no_tracefs',
          `tracefs is not mounted and mountTracefs is off; run \`mount -t tracefs tracefs ${TRACEFS}\``,
        ),
      )
    }
    const rc = addon.mountTracefs(TRACEFS)
    // EBUSY: someone mounted it meanwhile.
    if (rc !== 0 && !tracefsMounted()) {
      return Result.fail(
        new BpfUnavailableError(
          'no_tracefs',
          `tracefs is not mounted and mounting it at ${TRACEFS} failed (errno ${-rc}); run \`mount -t tracefs tracefs ${TRACEFS}\` as root`,
        ),
      )
    }
  }
  return Result.succeed(addon)
}

/** Whether the ebpf collector can run here, and if not why (the agent prints `ebpf: skipped (reason)`). */
export async function detectEbpf(input: unknown = {}): Promise<{ supported: boolean; reason: string }> {
  const parsed = parseEbpfConfig(input)
  if (Result.isFailure(parsed)) return { supported: false, reason: parsed.failure.message }
  const pre = preflight(parsed.success)
  if (Result.isFailure(pre)) return { supported: false, reason: pre.failure.message }
  // Creating the maps alone proves the bpf() syscall is allowed without attaching anything.
  const session = BpfSession.create(pre.success, {
    ringBytes: 4096,
    wakeupBytes: 4096,
    drainIntervalMs: 5,
    batchBytes: 65536,
    maxBatchesInFlight: 1,
    programs: [],
    openPrefixes: [],
    probePid: 0,
  })
  try {
    session.open()
  } catch (e) {
    return { supported: false, reason: e instanceof Error ? e.message : String(e) }
  } finally {
    session.close()
  }
  return { supported: true, reason: `kernel ${kernelRelease()} with BTF, addon ${pre.success.path}` }
}

function kernelRelease(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()
  } catch {
    return 'unknown'
  }
}
