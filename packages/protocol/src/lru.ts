/**
 * One bounded map for every cache and per-key table in AgentMesh: a `Map` whose insertion order is
 * its recency order, so the least recently used entry is the first key. Past `maxSize` entries the
 * oldest go. Every in-memory table keyed by something a peer chooses (an AMID, an IP, a room) must
 * be bounded; this is the one way to do it.
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, V>()
  #maxSize: number

  constructor (maxSize: number) {
    if (!Number.isInteger(maxSize) || maxSize < 1) throw new RangeError(`LruMap maxSize must be a positive integer, got ${maxSize}`)
    this.#maxSize = maxSize
  }

  get size (): number { return this.#map.size }
  get maxSize (): number { return this.#maxSize }

  /** A smaller bound drops the least recently used entries at once. */
  set maxSize (n: number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`LruMap maxSize must be a positive integer, got ${n}`)
    this.#maxSize = n
    this.#trim(n)
  }

  has (key: K): boolean { return this.#map.has(key) }

  /** The value, marked as most recently used. */
  get (key: K): V | undefined {
    if (!this.#map.has(key)) return undefined
    const v = this.#map.get(key) as V
    this.#map.delete(key)
    this.#map.set(key, v)
    return v
  }

  /** The value without touching its recency. */
  peek (key: K): V | undefined { return this.#map.get(key) }

  set (key: K, value: V): this {
    if (this.#map.has(key)) this.#map.delete(key)
    else this.#trim(this.#maxSize - 1)
    this.#map.set(key, value)
    return this
  }

  delete (key: K): boolean { return this.#map.delete(key) }
  clear (): void { this.#map.clear() }
  keys (): IterableIterator<K> { return this.#map.keys() }
  values (): IterableIterator<V> { return this.#map.values() }
  entries (): IterableIterator<[K, V]> { return this.#map.entries() }
  [Symbol.iterator] (): IterableIterator<[K, V]> { return this.#map.entries() }

  #trim (to: number): void {
    while (this.#map.size > to) {
      const oldest = this.#map.keys().next()
      if (oldest.done === true) return
      this.#map.delete(oldest.value)
    }
  }
}

/** A bounded set with the same recency rule (members seen recently stay). */
export class LruSet<K> {
  readonly #map: LruMap<K, true>
  constructor (maxSize: number) { this.#map = new LruMap(maxSize) }
  get size (): number { return this.#map.size }
  has (key: K): boolean { return this.#map.get(key) === true }
  add (key: K): this { this.#map.set(key, true); return this }
  delete (key: K): boolean { return this.#map.delete(key) }
  clear (): void { this.#map.clear() }
  [Symbol.iterator] (): IterableIterator<K> { return this.#map.keys() }
}
