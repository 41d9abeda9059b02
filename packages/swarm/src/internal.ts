// for sibling packages (the net side, the simulator): everything public, nothing more yet
export * from './index.ts'
