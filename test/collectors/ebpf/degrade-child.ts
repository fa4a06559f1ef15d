/** Run by degradation.test.ts in a restricted process: reports what detect and start say. */
import { detectEbpf, EbpfCollector } from '../../../src/collectors/ebpf/index.js'

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>
  const detect = await detectEbpf(config)
  const collector = new EbpfCollector(config)
  let startError: { name: string; reason?: unknown; message: string } | undefined
  try {
    await collector.start(AbortSignal.timeout(30_000))
  } catch (e) {
    const err = e as Error & { reason?: unknown }
    startError = { name: err.name, reason: err.reason, message: err.message }
  }
  const health = collector.health()
  const attached = health.details?.attached
  const failed = health.details?.failed
  await collector.stop()
  console.log(
    JSON.stringify({ detect, startError, health: { status: health.status, message: health.message }, attached, failed }),
  )
}

main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
