// Two agents on one relay: Alice sends, Bob receives, each message once.
// Run against a relay: `npm start` in one terminal, then `node --import tsx examples/hello.ts`.
import { connect } from '@agentmesh/client'
import { createIdentity } from '@agentmesh/crypto'

const server = process.env.AGENTMESH_SERVER ?? 'ws://127.0.0.1:7777'
const alice = await connect({ server, identity: createIdentity('alice') })
const bob = await connect({ server, identity: createIdentity('bob') })

// send() resolves once the relay has stored the message (it survives a relay crash from here)
const { id } = await alice.send(bob.amid, { text: 'hello bob' })
console.log(`alice sent ${id}`)

for await (const msg of bob.messages({ signal: AbortSignal.timeout(10_000) })) {
  console.log(`bob got "${msg.text}" from ${msg.from === alice.amid ? 'alice' : msg.from}`)
  break // the message counts as processed once the loop moves on or leaves
}
await alice.close()
await bob.close()
