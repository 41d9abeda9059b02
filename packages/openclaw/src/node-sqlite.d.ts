// node:sqlite (Node ≥ 22.5) is not in the project's @types/node 20: the part the shim uses.
declare module 'node:sqlite' {
  type SQLInputValue = null | number | bigint | string | Uint8Array
  export class StatementSync {
    run (...params: SQLInputValue[]): { changes: number | bigint, lastInsertRowid: number | bigint }
    get (...params: SQLInputValue[]): Record<string, unknown> | undefined
    all (...params: SQLInputValue[]): Array<Record<string, unknown>>
  }
  export class DatabaseSync {
    constructor (path: string)
    readonly isOpen: boolean
    readonly isTransaction: boolean
    exec (sql: string): void
    prepare (sql: string): StatementSync
    close (): void
  }
}
