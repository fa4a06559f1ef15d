import { existsSync, readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { dirname, join, normalize } from 'node:path'
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

/** Serve /inspect (the page) and /inspect/<file> from the bundled static folder; offline, no CDN. */
export function serveInspectorAsset(path: string, res: ServerResponse): boolean {
  const rel = path === '/inspect' || path === '/inspect/' ? 'index.html' : path.slice('/inspect/'.length)
  const file = normalize(join(STATIC_DIR, rel))
  if (!file.startsWith(STATIC_DIR) || !existsSync(file)) return false
  const ext = file.slice(file.lastIndexOf('.'))
  res.writeHead(200, { 'content-type': TYPES[ext] ?? 'application/octet-stream', 'cache-control': 'no-cache' })
  res.end(readFileSync(file))
  return true
}
