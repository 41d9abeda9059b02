/** A small line chart as inline SVG (no library): values left to right, scaled to their maximum. */
import { html } from './html.ts'

export function Spark ({ values, label, width = 280, height = 64 }: { values: number[], label: string, width?: number, height?: number }): any {
  if (values.length < 2) return html`<svg class="spark" viewBox=${`0 0 ${width} ${height}`} role="img" aria-label=${label + ': collecting samples'}><text x="8" y=${height / 2} class="spark-empty">collecting samples…</text></svg>`
  const max = Math.max(1, ...values)
  const step = width / (values.length - 1)
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 4 - (v / max) * (height - 8)).toFixed(1)}`)
  return html`<svg class="spark" viewBox=${`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label=${`${label}: now ${values[values.length - 1]}, at most ${max}`}>
    <polyline class="spark-area" points=${`0,${height} ${pts.join(' ')} ${width},${height}`} />
    <polyline class="spark-line" points=${pts.join(' ')} />
  </svg>`
}
