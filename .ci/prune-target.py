#!/usr/bin/env python3
"""Keep the cargo target dirs that CI reuses between runs from filling the disk.

A reused target dir only grows: every change of Cargo.lock, of a feature set or of the
toolchain gives the test binaries new hashes, and the old ones (about 100 MB each, 52 per build)
stay behind; incremental dirs grow the same way. One run on record failed with "No space left
on device" that way (tests: 54 s in, rustc could not write its output).

  prune-target.py start [--min-free-gb N] DIR...
      Before building. When the file system holding DIR has less than N GB free (default 20):
      drop the incremental dirs and every test/binary executable (they are leaves, cargo relinks
      what it needs). When that still leaves less than N/2 GB free, remove the dirs entirely
      (a cold build). Prints what it did.

  prune-target.py end DIR --keep-json FILE [--newest-per-name DIR2]...
      After building. FILE holds `cargo ... --message-format=json` output: every executable
      in DIR's deps/ and examples/ dirs that is neither named in it nor a hard link of one that
      is, is stale and removed. For DIR2 (the fuzz build, one binary per target name), every
      executable but the newest of each name is removed.
"""
import argparse
import json
import os
import re
import shutil
import sys

GB = 1024**3
HASHED = re.compile(r"^(?P<name>.+)-[0-9a-f]{16}$")


def free_bytes(path):
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize


def artifact_dirs(root):
    """deps/, examples/ and incremental/ of every profile dir under a target dir
    (debug/, release/, <triple>/release/ ...)."""
    if not os.path.isdir(root):
        return
    for dirpath, dirnames, _ in os.walk(root):
        # Depth: root/profile/deps or root/triple/profile/deps.
        depth = os.path.relpath(dirpath, root).count(os.sep)
        if depth > 2:
            dirnames[:] = []
            continue
        for name in list(dirnames):
            if name in ("deps", "examples", "incremental"):
                yield name, os.path.join(dirpath, name)
        dirnames[:] = [d for d in dirnames if d not in ("deps", "examples", "incremental", "build", "doc", ".fingerprint")]


def executables(directory):
    """Regular executable files without an extension: test binaries, bins and examples
    (rlibs, .so proc macros, .d files all have one)."""
    for entry in os.scandir(directory):
        if not entry.is_file(follow_symlinks=False) or "." in entry.name:
            continue
        st = entry.stat(follow_symlinks=False)
        if st.st_mode & 0o100:
            yield entry, st


def size_of(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def remove_executables_and_incremental(root):
    freed = 0
    for kind, path in artifact_dirs(root):
        if kind == "incremental":
            freed += size_of(path)
            shutil.rmtree(path, ignore_errors=True)
            continue
        for entry, st in executables(path):
            freed += st.st_size
            os.unlink(entry.path)
    return freed


def cmd_start(args):
    need = args.min_free_gb * GB
    for root in args.dirs:
        have = free_bytes(root)
        print(f"ci: {root}: {size_of(root) / GB:.1f} GB, {have / GB:.1f} GB free")
    first = args.dirs[0]
    if free_bytes(first) >= need:
        return
    freed = sum(remove_executables_and_incremental(root) for root in args.dirs)
    print(f"ci: under {args.min_free_gb} GB free: removed executables and incremental dirs "
          f"({freed / GB:.1f} GB), {free_bytes(first) / GB:.1f} GB free now")
    if free_bytes(first) >= need / 2:
        return
    for root in args.dirs:
        shutil.rmtree(root, ignore_errors=True)
    print(f"ci: still under {args.min_free_gb / 2:.0f} GB free: removed the target dirs "
          f"(cold build), {free_bytes(first) / GB:.1f} GB free now")


def keep_set(json_path):
    keep = set()
    with open(json_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("reason") != "compiler-artifact":
                continue
            for p in (msg.get("filenames") or []) + [msg.get("executable")]:
                if p:
                    keep.add(os.path.realpath(p))
    return keep


def cmd_end(args):
    keep = keep_set(args.keep_json)
    if not keep:
        print("ci: prune: no artifacts in the cargo output, nothing removed", file=sys.stderr)
        return
    kept_inodes = set()
    for p in keep:
        try:
            st = os.stat(p)
            kept_inodes.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    freed, count = 0, 0
    for kind, path in artifact_dirs(args.dir):
        if kind == "incremental":
            continue
        for entry, st in executables(path):
            if os.path.realpath(entry.path) in keep or (st.st_dev, st.st_ino) in kept_inodes:
                continue
            freed += st.st_size
            count += 1
            os.unlink(entry.path)
    for root in args.newest_per_name:
        for kind, path in artifact_dirs(root):
            if kind == "incremental":
                continue
            newest = {}
            for entry, st in executables(path):
                m = HASHED.match(entry.name)
                if not m:
                    continue
                newest.setdefault(m.group("name"), []).append((st.st_mtime, entry.path, st.st_size))
            for versions in newest.values():
                versions.sort()
                for _, p, size in versions[:-1]:
                    freed += size
                    count += 1
                    os.unlink(p)
    print(f"ci: pruned {count} stale executables ({freed / GB:.1f} GB); "
          f"{free_bytes(args.dir) / GB:.1f} GB free")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start")
    start.add_argument("--min-free-gb", type=float, default=20.0)
    start.add_argument("dirs", nargs="+")
    end = sub.add_parser("end")
    end.add_argument("dir")
    end.add_argument("--keep-json", required=True)
    end.add_argument("--newest-per-name", action="append", default=[])
    args = parser.parse_args()
    if args.cmd == "start":
        cmd_start(args)
    else:
        cmd_end(args)


if __name__ == "__main__":
    main()
