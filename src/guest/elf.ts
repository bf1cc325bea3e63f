/**
 * Just enough ELF64 (little-endian) to check build outputs without the kit's binutils: a
 * section's bytes (a kernel module's `.modinfo`, where `modinfo` reads vermagic and aliases)
 * and the program headers (a static binary has no PT_INTERP).
 */
import * as fsp from 'node:fs/promises';

const ELF_MAGIC = 0x464c457f; // "\x7fELF" read little-endian
export const EM_X86_64 = 62;
export const PT_INTERP = 3;

export interface ElfFile {
  machine: number;
  /** 1 relocatable (a .ko), 2 executable, 3 shared object / PIE. */
  type: number;
  sections: { name: string; offset: number; size: number }[];
  programHeaders: { type: number }[];
  data: Buffer;
}

export function parseElf(data: Buffer): ElfFile {
  if (data.length < 64 || data.readUInt32LE(0) !== ELF_MAGIC) throw new Error('Not an ELF file');
  if (data[4] !== 2 || data[5] !== 1) throw new Error('Not a little-endian ELF64 file');
  const type = data.readUInt16LE(0x10);
  const machine = data.readUInt16LE(0x12);
  const phoff = Number(data.readBigUInt64LE(0x20));
  const shoff = Number(data.readBigUInt64LE(0x28));
  const phentsize = data.readUInt16LE(0x36);
  const phnum = data.readUInt16LE(0x38);
  const shentsize = data.readUInt16LE(0x3a);
  const shnum = data.readUInt16LE(0x3c);
  const shstrndx = data.readUInt16LE(0x3e);
  const within = (off: number, len: number) => off >= 0 && len >= 0 && off + len <= data.length;
  if (!within(phoff, phnum * phentsize) || !within(shoff, shnum * shentsize)) throw new Error('ELF headers outside the file');

  const programHeaders = Array.from({ length: phnum }, (_, i) => ({ type: data.readUInt32LE(phoff + i * phentsize) }));
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return { nameOff: data.readUInt32LE(at), offset: Number(data.readBigUInt64LE(at + 0x18)), size: Number(data.readBigUInt64LE(at + 0x20)) };
  });
  const strtab = raw[shstrndx];
  const name = (off: number) => {
    if (!strtab) return '';
    const start = strtab.offset + off;
    const end = data.indexOf(0, start);
    return data.toString('latin1', start, end < 0 ? start : end);
  };
  const sections = raw.map((s) => ({ name: name(s.nameOff), offset: s.offset, size: s.size }));
  return { machine, type, sections, programHeaders, data };
}

/** The bytes of section `name`, or undefined. */
export function elfSection(elf: ElfFile, name: string): Buffer | undefined {
  const s = elf.sections.find((x) => x.name === name);
  if (!s || s.offset + s.size > elf.data.length) return undefined;
  return elf.data.subarray(s.offset, s.offset + s.size);
}

/** A kernel module's `.modinfo` as `modinfo` shows it: key → values (alias, parm repeat). */
export async function readModinfo(koPath: string): Promise<Record<string, string[]>> {
  const elf = parseElf(await fsp.readFile(koPath));
  const section = elfSection(elf, '.modinfo');
  if (!section) throw new Error(`${koPath} has no .modinfo section: not a kernel module`);
  const info: Record<string, string[]> = {};
  for (const entry of section.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    (info[entry.slice(0, eq)] ??= []).push(entry.slice(eq + 1));
  }
  return info;
}

/** Whether an executable needs no program interpreter (it is statically linked). */
export async function isStaticExecutable(path: string): Promise<boolean> {
  const elf = parseElf(await fsp.readFile(path));
  return (elf.type === 2 || elf.type === 3) && !elf.programHeaders.some((p) => p.type === PT_INTERP);
}
