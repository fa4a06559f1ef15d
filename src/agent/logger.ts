/**
 * Structured logs on stderr, one line each: a JSON object (default, for log pipelines) or a
 * readable `time LEVEL message key=value ...` line (`--log-format text`). No event data unless a
 * caller puts it there.
 */
import { redactShapes } from './redact.js'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFormat = 'json' | 'text'
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text']
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  setLevel(level: LogLevel): void
}

/** logfmt value: bare when it is a plain token, quoted (JSON string escapes) otherwise. */
function fieldValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v)
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s)
}

export function formatLogLine(format: LogFormat, time: string, level: LogLevel, msg: string, fields?: Record<string, unknown>): string {
  if (format === 'json') return `${JSON.stringify({ time, level, msg, ...fields })}\n`
  let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`
  for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) line += ` ${k}=${fieldValue(v)}`
  return `${line}\n`
}

/**
 * Lines to stderr. A stderr that fails (its reader closed it: EPIPE) must not crash the agent
 * through an unhandled 'error': logging stops, the agent goes on (its outputs and HTTP still work).
 */
export function stderrWriter(stream: NodeJS.WritableStream & { destroyed?: boolean } = process.stderr): (line: string) => void {
  let failed = false
  stream.on('error', () => {
    failed = true
  })
  return (line) => {
    if (failed || stream.destroyed) return
    try {
      stream.write(line)
    } catch {
      failed = true
    }
  }
}

let defaultWriter: ((line: string) => void) | undefined

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (defaultWriter ??= stderrWriter()),
  format: LogFormat = 'json',
  /** Applied to every line before it is written (the agent masks secrets here). */
  redact: (line: string) => string = redactShapes,
): Logger {
  let min = ORDER[level]
  const log = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return
    write(redact(formatLogLine(format, new Date().toISOString(), lvl, msg, fields)))
  }
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    setLevel: (l) => {
      min = ORDER[l]
    },
  }
}
