/**
 * SPIR-V of test/fixtures/spin.comp, a kernel that never ends (one binding: { stop, turns }; 4
 * bytes of push constants: the `stop` value it waits for), compiled with glslangValidator (CI
 * installs glslang-tools; without it the calling test fails).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spirvWords } from '../../src/backend/host-driver.js';

const SOURCE = fileURLToPath(new URL('../../../test/fixtures/spin.comp', import.meta.url));

export function spinKernelSpirv(): Uint8Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-spin-'));
  try {
    const out = path.join(dir, 'spin.spv');
    execFileSync('glslangValidator', ['-V', '--target-env', 'vulkan1.1', '-o', out, SOURCE], { stdio: 'pipe' });
    return new Uint8Array(fs.readFileSync(out));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function spinKernelWords(): Uint32Array {
  return spirvWords(spinKernelSpirv());
}
