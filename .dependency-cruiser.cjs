/**
 * The layers (DESIGN.md, Layout), checked in `npm test` by test/layering.test.ts:
 * commands → cli / sim / server → core. Nothing imports upwards, nothing imports in a circle.
 */
module.exports = {
  forbidden: [
    {name: 'core-imports-nothing-above', severity: 'error', comment: 'src/core is the engine: it imports nothing from sim, server, cli, commands or config',
      from: {path: '^src/core/'}, to: {path: '^src/(sim|server|cli|commands)/|^src/config\\.ts$'}},
    {name: 'server-not-sim-or-cli', severity: 'error', comment: 'the HTTP adapter imports the engine only',
      from: {path: '^src/server/'}, to: {path: '^src/(sim|cli|commands)/|^src/config\\.ts$'}},
    {name: 'sim-not-cli', severity: 'error', comment: 'the sim is a library: no oclif, no commands',
      from: {path: '^src/sim/'}, to: {path: '^src/(cli|commands)/|^src/config\\.ts$'}},
    {name: 'sim-reaches-server-only-through-the-stack', severity: 'error', comment: 'only the in-process stack serves the engine',
      from: {path: '^src/sim/', pathNot: '^src/sim/run/stack\\.ts$'}, to: {path: '^src/server/'}},
    {name: 'no-circular', severity: 'error', comment: 'cycles make the layers meaningless (a type-only import is erased and cannot form one)',
      from: {}, to: {circular: true, viaOnly: {dependencyTypesNot: ['type-only']}}},
  ],
  options: {
    doNotFollow: {path: 'node_modules'},
    exclude: {path: '\\.test\\.ts$'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
  },
}
