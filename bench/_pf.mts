import { buildFaultFixture } from '../test/reliability-faults.js'
const fx = await buildFaultFixture('/tmp/reltest/pf/fx'); console.log(fx.reads)
