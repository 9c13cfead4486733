import vm from 'node:vm';

/**
 * Jest setup (every suite): onnxruntime-node's native binding creates tensors' typed arrays in
 * Node's main context, while Jest evaluates onnxruntime-common (which checks
 * `data instanceof Float32Array`) in each suite's own vm context, whose typed-array classes are
 * different ones: Silero VAD would fail with "A float32 tensor's data must be type of function
 * Float32Array()". Outside Jest there is one context and nothing to do. Only the two types the
 * VAD's tensors use are replaced, so other code keeps Jest's usual globals.
 */
for (const name of ['Float32Array', 'BigInt64Array']) {
  (globalThis as Record<string, unknown>)[name] = vm.runInThisContext(name);
}
