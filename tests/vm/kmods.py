#!/usr/bin/env python3
"""Copy kernel modules and everything they depend on, decompressed, and print
their file names in load order (dependencies first).

usage: kmods.py MODULES_DIR OUT_DIR NAME...

Debian's linux-image packages ship no modules.dep (depmod writes it when the
package is installed), so dependencies are read from each module's own
.modinfo "depends=" field, which modpost records when the kernel is built;
it is the same information depmod would compute.  Modules are decompressed
here because busybox insmod cannot load .ko.xz / .ko.zst files.
"""

import struct
import subprocess
import sys
from pathlib import Path

DECOMPRESSORS = {".xz": ["xz", "-dc"], ".zst": ["zstd", "-dcq"], ".gz": ["gzip", "-dc"]}


def module_name(path: Path) -> str:
    name = path.name
    for ext in DECOMPRESSORS:
        name = name.removesuffix(ext)
    # The kernel treats '-' and '_' in module names as the same character.
    return name.removesuffix(".ko").replace("-", "_")


def read_module(path: Path) -> bytes:
    tool = DECOMPRESSORS.get(path.suffix)
    if tool is None:
        return path.read_bytes()
    return subprocess.run([*tool, str(path)], check=True, stdout=subprocess.PIPE).stdout


def modinfo_depends(elf: bytes, origin: Path) -> list[str]:
    if elf[:5] != b"\x7fELF\x02":
        raise SystemExit(f"kmods: {origin} is not a 64-bit ELF module")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", elf, shoff + index * shentsize
        )
        return name, offset, size

    _, strtab, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        start = strtab + name
        if elf[start : elf.index(b"\0", start)] != b".modinfo":
            continue
        for field in elf[offset : offset + size].split(b"\0"):
            if field.startswith(b"depends="):
                return [dep.replace("-", "_") for dep in field[8:].decode().split(",") if dep]
        return []
    raise SystemExit(f"kmods: {origin} has no .modinfo section")


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    modules_dir, out_dir, wanted = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    available = {module_name(p): p for p in modules_dir.rglob("*.ko*")}
    builtin_file = modules_dir / "modules.builtin"
    builtin = (
        {module_name(Path(line)) for line in builtin_file.read_text().split()}
        if builtin_file.exists()
        else set()
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    order: list[str] = []
    visiting: set[str] = set()

    def load(name: str) -> None:
        if name in order or name in builtin:
            return
        if name in visiting:
            raise SystemExit(f"kmods: dependency cycle through {name}")
        if name not in available:
            raise SystemExit(f"kmods: module {name} not found under {modules_dir}")
        visiting.add(name)
        elf = read_module(available[name])
        for dep in modinfo_depends(elf, available[name]):
            load(dep)
        (out_dir / f"{name}.ko").write_bytes(elf)
        order.append(name)

    for name in wanted:
        load(name.replace("-", "_"))
    print("\n".join(f"{name}.ko" for name in order))


if __name__ == "__main__":
    main()
