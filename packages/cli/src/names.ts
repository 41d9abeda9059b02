import { usage } from './output.ts'

/** Display names: 1–64 printable characters, no control characters. */
export function checkName (name: string): string {
  const n = name.trim()
  // eslint-disable-next-line no-control-regex
  if (n === '' || n.length > 64 || /[\u0000-\u001f\u007f]/.test(n)) throw usage('--name must be 1 to 64 printable characters')
  return n
}
