import { measureSetups } from './e2ee.ts'
for (let i = 0; i < 2; i++) { const r = await measureSetups(1000, 3); console.log(r.per_s, r.per_cpu_s) }
