import { execFileSync } from 'node:child_process'
import { chmodSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A self-signed certificate for `hostNames`, valid one day, written to `dir` as key.pem and cert.pem (readable by
 * every user: PgBouncer drops root before it reads them). Made by the machine's openssl, for TLS on loopback.
 */
export function selfSignedCertificate (dir: string, hostNames: string[]) {
  const keyFile = join(dir, 'key.pem')
  const certFile = join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${hostNames[0]}`, '-addext', `subjectAltName=${hostNames.map((host) => `DNS:${host}`).join(',')}`,
    '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' })
  chmodSync(keyFile, 0o644)
  return { keyFile, certFile, key: readFileSync(keyFile), cert: readFileSync(certFile) }
}
