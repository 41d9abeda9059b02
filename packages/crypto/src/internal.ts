export * from './index.ts'
// which ML-KEM-768 implementation PQXDH uses (tests hold the two to each other)
export { mlKem768Ready, mlKem768Implementation, mlKem768Implementations, mlKem768Encapsulate, mlKem768Decapsulate } from './ml-kem.ts'
