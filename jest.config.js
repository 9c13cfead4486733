/**
 * Jest in native-ESM mode (NestJS 12 is ESM-only): run through
 * `node --experimental-vm-modules node_modules/jest/bin/jest.js` (scripts/test.sh does).
 * Type-checking is done once by `tsc` in scripts/test.sh; ts-jest only transpiles here.
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  // Silero VAD (onnxruntime) under Jest's per-suite vm contexts: see the file.
  setupFiles: ['<rootDir>/test/support/typed-array-realm.ts'],
  testTimeout: 180_000,
  maxWorkers: 1,
};
