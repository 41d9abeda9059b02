/**
 * The event queue: a binary min-heap over typed arrays, ordered by (time, insertion number), so
 * events at the same time run in the order they were scheduled (deterministic). Each event is
 * four integers besides its time: kind, to, from, msg and a small `aux` (the hop count).
 * Grows by doubling; no object per event.
 */
export class EventHeap {
  private time: Float64Array
  private ord: Float64Array
  private kind: Uint8Array
  private to: Int32Array
  private from: Int32Array
  private msg: Int32Array
  private aux: Uint16Array
  private n = 0
  private counter = 0
  /** the most events held at once */
  peak = 0

  constructor (capacity = 1 << 16) {
    this.time = new Float64Array(capacity)
    this.ord = new Float64Array(capacity)
    this.kind = new Uint8Array(capacity)
    this.to = new Int32Array(capacity)
    this.from = new Int32Array(capacity)
    this.msg = new Int32Array(capacity)
    this.aux = new Uint16Array(capacity)
  }

  get size (): number { return this.n }

  private grow (): void {
    const cap = this.time.length * 2
    const g = <T extends Float64Array | Uint8Array | Int32Array | Uint16Array>(a: T, C: new (n: number) => T): T => { const b = new C(cap); b.set(a); return b }
    this.time = g(this.time, Float64Array); this.ord = g(this.ord, Float64Array)
    this.kind = g(this.kind, Uint8Array); this.to = g(this.to, Int32Array); this.from = g(this.from, Int32Array)
    this.msg = g(this.msg, Int32Array); this.aux = g(this.aux, Uint16Array)
  }

  push (time: number, kind: number, to: number, from: number, msg: number, aux: number): void {
    if (this.n === this.time.length) this.grow()
    const o = this.counter++
    // sift up with a hole
    let i = this.n++
    if (this.n > this.peak) this.peak = this.n
    while (i > 0) {
      const p = (i - 1) >> 1
      if (this.time[p] < time || (this.time[p] === time && this.ord[p] < o)) break
      this.move(p, i)
      i = p
    }
    this.time[i] = time; this.ord[i] = o; this.kind[i] = kind; this.to[i] = to; this.from[i] = from; this.msg[i] = msg; this.aux[i] = aux
  }

  private move (src: number, dst: number): void {
    this.time[dst] = this.time[src]; this.ord[dst] = this.ord[src]; this.kind[dst] = this.kind[src]
    this.to[dst] = this.to[src]; this.from[dst] = this.from[src]; this.msg[dst] = this.msg[src]; this.aux[dst] = this.aux[src]
  }

  /** time of the next event (Infinity when empty) */
  peekTime (): number { return this.n === 0 ? Infinity : this.time[0] }

  // the popped event, read after pop()
  t = 0; k = 0; dst = 0; src = 0; m = 0; x = 0

  /** Removes the earliest event into t, k, dst, src, m, x. */
  pop (): void {
    this.t = this.time[0]; this.k = this.kind[0]; this.dst = this.to[0]; this.src = this.from[0]; this.m = this.msg[0]; this.x = this.aux[0]
    const last = --this.n
    if (last === 0) return
    const lt = this.time[last]; const lo = this.ord[last]
    let i = 0
    for (;;) {
      let c = 2 * i + 1
      if (c >= last) break
      const r = c + 1
      if (r < last && (this.time[r] < this.time[c] || (this.time[r] === this.time[c] && this.ord[r] < this.ord[c]))) c = r
      if (lt < this.time[c] || (lt === this.time[c] && lo < this.ord[c])) break
      this.move(c, i)
      i = c
    }
    this.move(last, i)
  }
}
