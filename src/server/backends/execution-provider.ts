/**
 * Which onnxruntime execution provider a model's sessions use (issue 12, GPU): CUDA when the model asks for a GPU
 * (`resources.gpu` > 0) and this machine can run it, else the CPU. Chosen once per worker at load, and logged with
 * the reason, so a GPU deployment that silently runs on the CPU is visible in its first log lines.
 *
 * | GPU asked | CUDA provider listed | its library installed | a GPU device visible | provider |
 * |-----------|----------------------|-----------------------|----------------------|----------|
 * | no        | -                    | -                     | -                    | cpu      |
 * | yes       | no                   | -                     | -                    | cpu      |
 * | yes       | yes                  | no                    | -                    | cpu      |
 * | yes       | yes                  | yes                   | no                   | cpu      |
 * | yes       | yes                  | yes                   | yes                  | cuda (then cpu for what CUDA cannot run) |
 *
 * The library is onnxruntime-node's `libonnxruntime_providers_cuda.so` next to its binding (its install script
 * downloads it; Ferry's images skip that download, so a GPU image must add it). `chooseProvider` is pure;
 * `providerFacts` reads the machine.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface ProviderFacts {
  gpuAsked: boolean;
  cudaListed: boolean;
  cudaLibrary: boolean;
  gpuDevice: boolean;
}

export interface ProviderChoice {
  provider: 'cuda' | 'cpu';
  why: string;
}

export function chooseProvider(f: ProviderFacts): ProviderChoice {
  if (!f.gpuAsked) return { provider: 'cpu', why: 'no GPU asked (resources.gpu: 0)' };
  if (!f.cudaListed) return { provider: 'cpu', why: 'GPU asked, but this onnxruntime has no CUDA provider' };
  if (!f.cudaLibrary)
    return {
      provider: 'cpu',
      why: 'GPU asked, but the CUDA provider library is not installed (libonnxruntime_providers_cuda.so)',
    };
  if (!f.gpuDevice) return { provider: 'cpu', why: 'GPU asked, but no GPU device is visible (/dev/nvidia0)' };
  return { provider: 'cuda', why: 'GPU asked and CUDA available' };
}

/** The facts of this machine for a model asking for `gpu` GPUs. */
export async function providerFacts(gpu: number): Promise<ProviderFacts> {
  if (gpu <= 0) return { gpuAsked: false, cudaListed: false, cudaLibrary: false, gpuDevice: false };
  const ort = await import('onnxruntime-node');
  const listed =
    (ort as { listSupportedBackends?: () => { name: string }[] }).listSupportedBackends?.() ?? [];
  let cudaLibrary = false;
  try {
    const bin = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')), 'bin');
    cudaLibrary = readdirSync(bin).some((napi) =>
      existsSync(join(bin, napi, process.platform, process.arch, 'libonnxruntime_providers_cuda.so')),
    );
  } catch {
    cudaLibrary = false;
  }
  return {
    gpuAsked: true,
    cudaListed: listed.some((b) => b.name === 'cuda'),
    cudaLibrary,
    gpuDevice: existsSync('/dev/nvidia0'),
  };
}
