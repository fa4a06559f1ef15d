import { existsSync, readFileSync, statSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { dirname, join, normalize, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package root, found from this module whether it runs from src/ (tests) or dist/src/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('inspector: package root not found')
    dir = up
  }
  return dir
}

const STATIC_DIR = join(packageRoot(), 'src', 'inspector', 'static')
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
}

/** The page must work offline and never call out: only this origin, enforced by the browser. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/** Serve /inspect (the page) and /inspect/<file> from the bundled static folder; offline, no CDN. */
export function serveInspectorAsset(path: string, res: ServerResponse): boolean {
  const rel = path === '/inspect' || path === '/inspect/' ? 'index.html' : path.slice('/inspect/'.length)
  const file = normalize(join(STATIC_DIR, rel))
  if (!file.startsWith(STATIC_DIR + sep) || !existsSync(file) || !statSync(file).isFile()) return false
  const ext = file.slice(file.lastIndexOf('.'))
  res.writeHead(200, { 'content-type': TYPES[ext] ?? 'application/octet-stream', 'cache-control': 'no-cache', ...SECURITY_HEADERS })
  res.end(readFileSync(file))
  return true
}
