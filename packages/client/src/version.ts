/** The SDK's version (its package's): what a connection reports as the agent's version unless told another (docs/protocol.md §3, §19). */
export const SDK_VERSION = '0.2.0'
