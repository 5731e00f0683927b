import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { chooseProvider, providerFacts } from './execution-provider.ts';
import { loadOnnxBackend } from './onnx.ts';

const IRIS = new URL('../../../examples/iris', import.meta.url).pathname;

test('the provider table, row by row: CUDA only when asked, listed, installed and a GPU is visible', () => {
  const all = { gpuAsked: true, cudaListed: true, cudaLibrary: true, gpuDevice: true };
  assert.deepEqual(chooseProvider(all), { provider: 'cuda', why: 'GPU asked and CUDA available' });
  assert.match(chooseProvider({ ...all, gpuAsked: false }).why, /^no GPU asked/);
  assert.match(chooseProvider({ ...all, cudaListed: false }).why, /no CUDA provider/);
  assert.match(chooseProvider({ ...all, cudaLibrary: false }).why, /libonnxruntime_providers_cuda\.so/);
  assert.match(chooseProvider({ ...all, gpuDevice: false }).why, /no GPU device is visible/);
  for (const missing of ['gpuAsked', 'cudaListed', 'cudaLibrary', 'gpuDevice'] as const)
    assert.equal(chooseProvider({ ...all, [missing]: false }).provider, 'cpu', missing);
});

test('on this machine (no GPU): a model asking for one loads on the CPU and says why; one not asking says so', async () => {
  const facts = await providerFacts(1);
  assert.equal(facts.gpuAsked, true);
  assert.equal(facts.cudaListed, true, 'onnxruntime-node 1.30 lists the CUDA provider');
  assert.equal(facts.gpuDevice, false);
  const options = {
    dir: IRIS,
    file: join(IRIS, 'model.onnx'),
    inputs: null,
    outputs: null,
    threads: 1,
    env: {},
  };
  const gpu = await loadOnnxBackend({ ...options, gpu: 1 });
  try {
    assert.equal(gpu.executionProvider?.provider, 'cpu');
    assert.match(gpu.executionProvider!.why, /^GPU asked, but/);
    const [label] = await gpu.runBatch!([
      { name: 'input', datatype: 'FP32', shape: [1, 4], data: new Float32Array([5.1, 3.5, 1.4, 0.2]) },
    ]);
    assert.equal(Number((label!.data as BigInt64Array)[0]), 0, 'and serves');
  } finally {
    await gpu.unload();
  }
  const cpu = await loadOnnxBackend({ ...options, gpu: 0 });
  assert.deepEqual(cpu.executionProvider, { provider: 'cpu', why: 'no GPU asked (resources.gpu: 0)' });
  await cpu.unload();
});
