/** A small multicast channel: every subscriber gets every value pushed after it subscribed. */
export class Channel<T> {
  private readonly subs = new Set<{ queue: T[], wake?: () => void }>()
  private ended = false

  push (v: T): void {
    for (const s of this.subs) { s.queue.push(v); s.wake?.() }
  }

  end (): void {
    this.ended = true
    for (const s of this.subs) s.wake?.()
  }

  subscribe (): AsyncIterable<T> {
    const sub: { queue: T[], wake?: () => void } = { queue: [] }
    this.subs.add(sub)
    const self = this
    return {
      async * [Symbol.asyncIterator] () {
        try {
          for (;;) {
            while (sub.queue.length > 0) yield sub.queue.shift()!
            if (self.ended) return
            await new Promise<void>((resolve) => { sub.wake = resolve })
            sub.wake = undefined
          }
        } finally {
          self.subs.delete(sub)
        }
      },
    }
  }
}
