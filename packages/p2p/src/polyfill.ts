/**
 * js-libp2p 3 calls `Promise.withResolvers`, which Node 20 lacks (Node 22 has it): this one
 * definition, loaded before any libp2p code runs, is what it needs (the same shape as the
 * standard one: https://tc39.es/ecma262/#sec-promise.withResolvers).
 */
declare global {
  interface PromiseConstructor {
    withResolvers?: <T>() => { promise: Promise<T>, resolve: (value: T | PromiseLike<T>) => void, reject: (reason?: unknown) => void }
  }
}

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> () {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    },
  })
}

export {}
