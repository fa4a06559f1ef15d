// Preloaded into an agent process under test (`node --expose-gc --import <this>`): every 500 ms a
// full GC, then the heap in use and the RSS, one JSON line appended to $HEAP_PROBE_FILE. After a
// full GC the heap is what the process really holds, not what the collector has not got to yet.
import { appendFileSync } from 'node:fs'

const file = process.env.HEAP_PROBE_FILE
if (!file) throw new Error('heap-probe: set HEAP_PROBE_FILE')
if (typeof globalThis.gc !== 'function') throw new Error('heap-probe: run node with --expose-gc')
setInterval(() => {
  globalThis.gc()
  const m = process.memoryUsage()
  appendFileSync(file, `${JSON.stringify({ t: Date.now(), heapUsed: m.heapUsed, rss: m.rss })}\n`)
}, 500).unref()
