import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { AgentMeshError, CloseCode, ErrorCode, ErrorRegistry, HttpStatus, closeCodeOf, httpStatusOf, isRetryable } from '@agentmesh/protocol'

describe('error registry', () => {
  it('errors - httpStatusOf answers the registry status, and 500 for a code no route answers with', () => {
    assert.equal(httpStatusOf(ErrorCode.RateLimited), 429)
    assert.equal(httpStatusOf(ErrorCode.UnknownRoom), 404)
    assert.equal(httpStatusOf(ErrorCode.CrlOutdated), 409)
    assert.equal(httpStatusOf(ErrorCode.InboxFull), 503)
    assert.equal(ErrorRegistry[ErrorCode.DecryptFailed].status, undefined)
    assert.equal(httpStatusOf(ErrorCode.DecryptFailed), 500)
  })

  it('errors - HttpStatus lists exactly the codes the registry gives a status, with that status', () => {
    const withStatus = Object.values(ErrorCode).filter(c => ErrorRegistry[c].status !== undefined)
    assert.deepEqual(Object.keys(HttpStatus).sort(), withStatus.sort())
    for (const c of withStatus) assert.equal(HttpStatus[c], httpStatusOf(c), c)
    assert.equal(HttpStatus[ErrorCode.Timeout], undefined)
  })

  it('errors - closeCodeOf pairs each error that ends a connection with its close code, and no other', () => {
    assert.deepEqual(
      Object.values(ErrorCode).flatMap(c => { const close = closeCodeOf(c); return close === undefined ? [] : [[c, close]] }).sort(),
      [
        [ErrorCode.AuthFailed, CloseCode.AuthFailed],
        [ErrorCode.AuthReplayed, CloseCode.AuthFailed],
        [ErrorCode.AuthTimeout, CloseCode.AuthTimeout],
        [ErrorCode.FrameTooLarge, CloseCode.MessageTooBig],
        [ErrorCode.HeartbeatTimeout, CloseCode.HeartbeatTimeout],
        [ErrorCode.Internal, CloseCode.InternalError],
        [ErrorCode.ShuttingDown, CloseCode.GoingAway],
        [ErrorCode.TooManyConnections, CloseCode.TooManyConnections],
        [ErrorCode.SlowConsumer, CloseCode.SlowConsumer],
        [ErrorCode.TooManyErrors, CloseCode.PolicyViolation],
      ].sort())
    assert.deepEqual([CloseCode.AuthFailed, CloseCode.AuthTimeout, CloseCode.HeartbeatTimeout, CloseCode.TooManyConnections, CloseCode.SlowConsumer, CloseCode.PolicyViolation], [4401, 4408, 4410, 4429, 4008, 1008])
  })

  it('errors - isRetryable: transient refusals are, a bad request is not', () => {
    for (const c of [ErrorCode.RateLimited, ErrorCode.InboxFull, ErrorCode.TooManyInFlight, ErrorCode.ShuttingDown, ErrorCode.ConnectFailed, ErrorCode.Timeout]) assert.equal(isRetryable(c), true, c)
    for (const c of [ErrorCode.InvalidArgument, ErrorCode.InvalidEnvelope, ErrorCode.AuthFailed, ErrorCode.UnknownRecipient, ErrorCode.HandleTaken, ErrorCode.DecryptFailed]) assert.equal(isRetryable(c), false, c)
  })
})

describe('AgentMeshError', () => {
  it('AgentMeshError - retryAfterS is typed and carried only when given', () => {
    const limited = new AgentMeshError(ErrorCode.RateLimited, 'too many requests; try again in 3 s', { retryAfterS: 3 })
    assert.equal(limited.retryAfterS, 3)
    assert.equal(limited.code, 'AM_ERR_RATE_LIMITED')
    assert.deepEqual(limited.toJSON(), { code: 'AM_ERR_RATE_LIMITED', message: 'too many requests; try again in 3 s' })
    const plain = new AgentMeshError(ErrorCode.InvalidArgument, 'bad')
    assert.equal(plain.retryAfterS, undefined)
    assert.equal(Object.hasOwn(plain, 'retryAfterS'), false, 'no own property: an error compares as before')
  })

  it('AgentMeshError - is() narrows to the code asked for, and recognises any Error with a registry code', () => {
    const err: unknown = new AgentMeshError(ErrorCode.UnknownRoom, 'no such room')
    assert.equal(AgentMeshError.is(err, ErrorCode.UnknownHandle), false)
    assert.equal(AgentMeshError.is(err), true)
    if (!AgentMeshError.is(err, ErrorCode.UnknownRoom)) assert.fail('not recognised')
    const code: 'AM_ERR_UNKNOWN_ROOM' = err.code
    assert.equal(code, 'AM_ERR_UNKNOWN_ROOM')
    assert.equal(AgentMeshError.is(Object.assign(new Error('x'), { code: 'AM_ERR_TIMEOUT' }), ErrorCode.Timeout), true)
    assert.equal(AgentMeshError.is(Object.assign(new Error('x'), { code: 'E_OTHER' })), false)
    assert.equal(AgentMeshError.is({ code: 'AM_ERR_TIMEOUT', message: 'not an Error' }), false)
  })
})
