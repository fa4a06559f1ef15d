import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** A CA and certificates made with the real `openssl` (RSA 2048, short-lived: test only). */
export interface Pem {
  readonly cert: string
  readonly key: string
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

export function makeCa(dir: string, name: string): Pem {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.pem`)
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  return { cert, key }
}

/** A leaf certificate signed by `ca`, with the given subjectAltNames (`DNS:x`, `IP:y`). */
export function makeLeaf(dir: string, name: string, ca: Pem, opts: { readonly san?: readonly string[]; readonly client?: boolean }): Pem {
  const key = join(dir, `${name}.key`)
  const csr = join(dir, `${name}.csr`)
  const cert = join(dir, `${name}.pem`)
  const ext = join(dir, `${name}.ext`)
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`])
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}`,
      ...(opts.san && opts.san.length > 0 ? [`subjectAltName=${opts.san.join(',')}`] : []),
    ].join('\n'),
  )
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext])
  return { cert, key }
}
