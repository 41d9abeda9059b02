/** The roles slice of the in-memory store. */
import type { AgentRole, RoleStore } from '../types.ts'
import { byKey } from './util.ts'

/** `live` throws once the store is closed; every call checks it first. */
export function memoryRoles (live: () => void): RoleStore {
  const roles = new Map<string, AgentRole>()

  return {
    async setRole (amid, role) { live(); if (role === 'worker') roles.delete(amid); else roles.set(amid, role) },
    async roleOf (amid) { live(); return roles.get(amid) ?? 'worker' },
    async listRoles () {
      live()
      return [...roles].sort((a, b) => byKey(a[0], b[0])).map(([amid, role]) => ({ amid, role }))
    },
  }
}
