#!/usr/bin/env python3
"""Packs the Debian package with dpkg-deb, from Cargo.toml's [package.metadata.deb] (the
assets, their modes, the control fields), so that no packaging tool has to be built first.

    .ci/deb.py PROFILE_DIR     e.g. `release` or `debug`: where the built binaries are

Man pages are gzipped as Debian wants them; `depends = "$auto"` is worked out by
dpkg-shlibdeps from the ELF files packed. Prints the path of the .deb.
"""
import glob
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tomllib

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
profile_dir = sys.argv[1] if len(sys.argv) > 1 else "release"

with open("Cargo.toml", "rb") as f:
    cargo = tomllib.load(f)
package = cargo["package"]
deb = package["metadata"]["deb"]
name = package["name"]
version = f"{package['version']}-1"
arch = subprocess.run(
    ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
).stdout.strip()

stage = tempfile.mkdtemp(prefix="mfa-agent-deb-")
try:
    elves = []
    for source, dest, mode in deb["assets"]:
        source = source.replace("target/release/", f"target/{profile_dir}/")
        matches = sorted(glob.glob(source))
        if not matches:
            sys.exit(f"error: the package asset {source} does not exist; build it first")
        for path in matches:
            target = dest + os.path.basename(path) if dest.endswith("/") else dest
            target = os.path.join(stage, target.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if "/share/man/" in target and not target.endswith(".gz"):
                target += ".gz"
                with open(path, "rb") as src, open(target, "wb") as out:
                    # No name or time in the header: the same page packs the same bytes.
                    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
                        shutil.copyfileobj(src, gz)
            else:
                shutil.copyfile(path, target)
            os.chmod(target, int(mode, 8))
            with open(target, "rb") as f:
                is_elf = f.read(4) == b"\x7fELF"
            if is_elf:
                # As Debian packs binaries: without debug symbols (a debug build's are most
                # of its size).
                subprocess.run(["strip", "--strip-debug", target], check=True)
                elves.append(target)
    for dirpath, dirnames, _ in os.walk(stage):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)

    depends = deb.get("depends", "")
    if "$auto" in depends:
        with tempfile.TemporaryDirectory() as work:
            os.makedirs(os.path.join(work, "debian"))
            with open(os.path.join(work, "debian", "control"), "w") as f:
                f.write(f"Source: {name}\n\nPackage: {name}\nArchitecture: any\n")
            out = subprocess.run(
                ["dpkg-shlibdeps", "-O"] + [f"-e{e}" for e in elves],
                cwd=work, check=True, capture_output=True, text=True,
            ).stdout
        auto = next((line.split("=", 1)[1] for line in out.splitlines() if line.startswith("shlibs:Depends=")), "")
        depends = ", ".join(d.strip() for d in depends.replace("$auto", auto).split(",") if d.strip())

    size_kb = sum(
        (os.path.getsize(os.path.join(d, f)) + 1023) // 1024
        for d, _, files in os.walk(stage) for f in files
    )
    description = package["description"]
    extended = "\n".join(
        " " + line for line in textwrap.wrap(" ".join(deb.get("extended-description", "").split()), 79)
    )
    control = {
        "Package": name,
        "Version": version,
        "Architecture": arch,
        "Section": deb.get("section", "utils"),
        "Priority": deb.get("priority", "optional"),
        "Maintainer": deb["maintainer"],
        "Installed-Size": str(size_kb),
        "Depends": depends,
        "Recommends": deb.get("recommends", ""),
    }
    os.makedirs(os.path.join(stage, "DEBIAN"))
    with open(os.path.join(stage, "DEBIAN", "control"), "w") as f:
        for key, value in control.items():
            if value:
                f.write(f"{key}: {value}\n")
        f.write(f"Description: {description}\n{extended}\n")

    os.makedirs("target/debian", exist_ok=True)
    output = f"target/debian/{name}_{version}_{arch}.deb"
    # xz for a package to install; a test build's (debug binaries, unoptimised) is packed
    # fast instead.
    compression = ["-Zxz"] if profile_dir == "release" else ["-Zgzip", "-z1"]
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", *compression, "--build", stage, output],
        check=True, stdout=subprocess.DEVNULL,
    )
    print(output)
finally:
    shutil.rmtree(stage)
