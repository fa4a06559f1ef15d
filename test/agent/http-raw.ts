import { request } from 'node:http'
import { connect } from 'node:net'

export interface RawResponse {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

/**
 * One HTTP request with exactly the headers given (fetch forbids `Host` and adds its own); a
 * streaming answer (SSE) is cut after its headers and first chunk.
 */
export function httpRequest(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {}, setHost: !opts.headers?.host && !opts.headers?.Host }, (res) => {
      let body = ''
      const streaming = String(res.headers['content-type'] ?? '').startsWith('text/event-stream')
      res.on('data', (d: Buffer) => {
        body += d.toString()
        if (streaming) res.destroy()
      })
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      res.on('end', done)
      res.on('close', done)
    })
    req.on('error', reject)
    if (opts.body) req.write(opts.body)
    req.end()
  })
}

/** Bytes as written on a socket (no normalisation of the target): status code and body. */
export function rawRequest(base: string, text: string): Promise<{ status: number; text: string }> {
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname)
    let got = ''
    s.on('data', (d: Buffer) => (got += d.toString('latin1')))
    s.on('error', reject)
    s.on('close', () => resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0), text: got }))
    s.write(text)
    // Half-close: the server answers and closes (Connection: close below).
    s.end()
  })
}
