/**
 * The mdgpu-vulkan-icd package as the kit builds it: libvulkan_mdgpu.so in the multiarch library
 * directory, exporting only the loader interface (vk_icd*: the loader finds everything else
 * through vk_icdGetInstanceProcAddr), and its manifest in /usr/share/vulkan/icd.d naming that
 * library and Vulkan 1.3; the package depends on the Khronos loader.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { buildGuestPackages, debContents, debFields, debFile } from '../../src/guest/packages.js';
import { ensureKit } from '../../src/kit/kit.js';

const execFileP = promisify(execFile);
const kit = await ensureKit();
const built = await buildGuestPackages(kit, { log: () => {} });
const deb = built.debs['mdgpu-vulkan-icd'];
const LIB = '/usr/lib/x86_64-linux-gnu/libvulkan_mdgpu.so';
const MANIFEST = '/usr/share/vulkan/icd.d/mdgpu_icd.x86_64.json';

t.test('the library and its manifest', async (t) => {
  const files = (await debContents(deb)).filter((e) => !e.mode.startsWith('d') && !e.path.startsWith('/usr/share/doc/')).map((e) => e.path);
  t.same(files.sort(), [LIB, MANIFEST].sort());
  const manifest = JSON.parse((await debFile(deb, MANIFEST)).toString()) as { file_format_version: string; ICD: Record<string, string> };
  t.equal(manifest.file_format_version, '1.0.1');
  t.equal(manifest.ICD.library_path, LIB, 'the manifest names the installed library');
  t.equal(manifest.ICD.library_arch, '64');
  t.match(manifest.ICD.api_version ?? '', /^1\.3\.\d+$/, `api_version ${manifest.ICD.api_version}`);
  const f = await debFields(deb);
  t.match(f.Depends ?? '', /\blibvulkan1\b/, 'depends on the Khronos loader');
  t.equal(f.Architecture, 'amd64');
});

t.test('only the loader interface is exported', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-icd-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const so = path.join(dir, 'libvulkan_mdgpu.so');
  await fsp.writeFile(so, await debFile(deb, LIB));
  const { stdout } = await execFileP('nm', ['-D', '--defined-only', so]);
  const exported = stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).pop()!)
    .sort();
  t.same(exported, ['vk_icdGetInstanceProcAddr', 'vk_icdGetPhysicalDeviceProcAddr', 'vk_icdNegotiateLoaderICDInterfaceVersion']);
  const { stdout: dynamic } = await execFileP('readelf', ['-d', so]);
  t.match(dynamic, /\(SONAME\).*libvulkan_mdgpu\.so/, 'SONAME');
  t.notMatch(dynamic, /libmdgpu\.so/, 'libmdgpu is linked in, not needed at run time');
});
