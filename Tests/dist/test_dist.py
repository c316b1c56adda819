"""The release artefacts of `make dist`, as a user gets them: run by `make dist-check`.

- dist/cryptcount needs no Swift toolchain: `ldd` names no Swift or Foundation library, and it
  answers `hello` and a `count` (of an `openssl enc` file) with an empty environment and the
  toolchain's library directories hidden (a private mount namespace binds an empty directory
  over them, so the loader cannot find them by any path).
- The platform wheel (dist/cryptcount-*.whl) carries it: installed into a fresh venv, the
  README's Python example runs with no $CRYPTCOUNT_BIN, a PATH without the build directories and
  the toolchain hidden; the `cryptcount` console command and `python -m cryptcount` run it too.
  Its tag is the manylinux glibc floor that `auditwheel show` finds.
- The pure-Python install (`pip install ./examples/python`) still works, with $CRYPTCOUNT_BIN.
- The man page and the bash/zsh/fish completions name every subcommand and flag of the command
  definitions (read from the executable's `--experimental-dump-help`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import msgpack
import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("CRYPTCOUNT_DIST", ROOT / "dist"))
BIN = DIST / "cryptcount"
SWIFT_LIBS = re.compile(r"lib(swift\w*|_?Foundation\w*|dispatch|BlocksRuntime|icu\w*)\.so")
# What a plain Debian/Ubuntu (and every manylinux policy) has: glibc, GCC's C/C++ runtimes, and
# zlib (on every manylinux policy's list, so auditwheel leaves it to the system).
SYSTEM_LIBS = {
    "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1",
    "libstdc++.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "linux-vdso.so.1", "libz.so.1",
}  # fmt: skip


def _require(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is missing: run `make dist` first")


@pytest.fixture(scope="session")
def dist_bin() -> Path:
    _require(BIN)
    return BIN


@pytest.fixture(scope="session")
def wheel() -> Path:
    wheels = sorted(DIST.glob("cryptcount-*.whl"))
    if len(wheels) != 1:
        pytest.skip(f"expected one wheel in {DIST}, found {len(wheels)}: run `make dist`")
    return wheels[0]


def toolchain_lib_dirs() -> List[str]:
    """The directories the toolchain's runtime libraries live in (those a debug build loads)."""
    swift = shutil.which("swift")
    if swift is None:
        return []  # no toolchain on this machine: nothing to hide
    info = json.loads(subprocess.run([swift, "-print-target-info"], check=True, capture_output=True).stdout)
    paths = info["paths"]
    dirs = set(paths.get("runtimeLibraryPaths", []))
    resource = paths.get("runtimeResourcePath")
    if resource:
        dirs.add(str(Path(resource).parent))  # usr/lib: Foundation, ICU, dispatch, ...
    existing = sorted(os.path.realpath(d) for d in dirs if os.path.isdir(d))
    # Hiding a directory hides what is under it (and a bind mount needs its mount point).
    return [d for d in existing if not any(d.startswith(o + os.sep) for o in existing if o != d)]


def swift_core_library() -> Optional[Path]:
    """libswiftCore.so of the toolchain, as a debug build loads it."""
    swift = shutil.which("swift")
    if swift is None:
        return None
    info = json.loads(subprocess.run([swift, "-print-target-info"], check=True, capture_output=True).stdout)
    for d in info["paths"].get("runtimeLibraryPaths", []):
        if (Path(d) / "libswiftCore.so").exists():
            return Path(d) / "libswiftCore.so"
    return None


@pytest.fixture(scope="session")
def hide_toolchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[List[str]]:
    """A command prefix that runs a shell command with the toolchain's libraries hidden."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("`unshare -m` is not permitted here (needs root): cannot hide the toolchain")
    empty = tmp_path_factory.mktemp("empty")
    dirs = toolchain_lib_dirs()
    # Bind an empty directory over each, then check that it really looks empty, then run.
    setup = "".join(
        f"mount --bind {shlex.quote(str(empty))} {shlex.quote(d)} && "
        f'[ -z "$(ls -A {shlex.quote(d)})" ] && '
        for d in dirs
    )
    yield ["unshare", "-m", "sh", "-c", setup + 'exec "$@"', "sh"]


def frame(message: Dict[str, object]) -> bytes:
    payload = msgpack.packb(message, use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


def unframe(data: bytes) -> List[Dict[str, object]]:
    out = []
    while data:
        (n,) = struct.unpack(">I", data[:4])
        out.append(msgpack.unpackb(data[4 : 4 + n], raw=False))
        data = data[4 + n :]
    return out


def wheel_bundled_libraries(wheel: Path) -> List[str]:
    """The shared libraries `auditwheel repair` copied into the wheel (cryptcount.libs/)."""
    with zipfile.ZipFile(wheel) as z:
        return [n.split("/", 1)[1] for n in z.namelist() if n.startswith("cryptcount.libs/")]


def test_ldd_names_no_toolchain_library(dist_bin: Path, wheel: Path) -> None:
    ldd = subprocess.run(["ldd", str(dist_bin)], check=True, capture_output=True, text=True).stdout
    names = [line.split()[0] for line in ldd.splitlines() if line.strip()]
    assert "not found" not in ldd, ldd
    assert not [n for n in names if SWIFT_LIBS.search(n)], ldd
    assert "libmsgpackc" not in ldd, ldd  # linked from Debian's static archive
    # Anything beyond a plain system's libraries must travel in the wheel (auditwheel renames
    # them libNAME-HASH.so.N): librnp with Botan and its other dependencies, and libre2.
    bundled = wheel_bundled_libraries(wheel)
    for name in set(os.path.basename(n) for n in names) - SYSTEM_LIBS:
        stem = name.split(".so")[0]
        assert any(b.startswith(stem + "-") for b in bundled), (name, bundled, ldd)
    for d in toolchain_lib_dirs():
        assert d not in ldd, ldd
    # SwiftPM links with RUNPATH $ORIGIN (auditwheel's RPATH is $ORIGIN-relative too); no absolute one.
    dynamic = subprocess.run(["readelf", "-d", str(dist_bin)], check=True, capture_output=True, text=True).stdout
    for paths in re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r\w*path: \[(.*)\]", dynamic):
        assert all(p.startswith("$ORIGIN") for p in paths.split(":")), dynamic


def test_the_toolchain_is_really_hidden(hide_toolchain: List[str], tmp_path: Path) -> None:
    """The check below can fail: a binary that loads the Swift runtime does not start."""
    shared = swift_core_library()
    if shared is None:
        pytest.skip("no Swift toolchain (with a shared libswiftCore.so) on this machine")
    run = subprocess.run([*hide_toolchain, "test", "-e", str(shared)], capture_output=True)
    assert run.returncode == 1, run.stderr  # sh's setup succeeded, the file is gone


def test_serves_hello_and_count_without_toolchain_or_environment(
    dist_bin: Path, hide_toolchain: List[str], tmp_path: Path
) -> None:
    text = "rain on the roof; more rain, and sun. " * 100
    (tmp_path / "plain.txt").write_text(text)
    (tmp_path / "pass").write_text("correct horse")
    subprocess.run(
        ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", f"file:{tmp_path / 'pass'}",
         "-in", str(tmp_path / "plain.txt"), "-out", str(tmp_path / "story.enc")],
        check=True,
    )  # fmt: skip
    requests = b"".join([
        frame({"id": 1, "op": "hello"}),
        frame({"id": 2, "op": "count", "files": [str(tmp_path / "plain.txt")], "terms": ["rain", "sun"]}),
        frame({"id": 3, "op": "count", "files": [str(tmp_path / "story.enc")], "terms": ["rain"],
               "cipher": "openssl", "secret": "correct horse"}),
        frame({"id": 4, "op": "shutdown"}),
    ])  # fmt: skip
    run = subprocess.run(
        [*hide_toolchain, "env", "-i", str(dist_bin), "serve"], input=requests, capture_output=True, timeout=60
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    by_id: Dict[object, List[Dict[str, object]]] = {}
    for message in unframe(run.stdout):
        by_id.setdefault(message["id"], []).append(message)
    hello = by_id[1][0]
    assert hello["type"] == "hello" and hello["protocol"] == 1 and "openssl" in hello["ciphers"]
    assert [m["type"] for m in by_id[2]] == ["file", "done"]
    assert by_id[2][0]["counts"] == [200, 100]
    assert [m["type"] for m in by_id[3]] == ["file", "done"]
    assert by_id[3][0]["counts"] == [200], by_id[3]
    assert by_id[4] == [{"id": 4, "type": "ok"}]


# -- the wheel ----------------------------------------------------------------------------------


def wheel_tag(wheel: Path) -> str:
    return wheel.name[: -len(".whl")].split("-")[-1]


def test_wheel_is_tagged_for_the_glibc_it_needs(wheel: Path) -> None:
    tag = wheel_tag(wheel)
    assert wheel.name.startswith("cryptcount-") and "-py3-none-" in wheel.name, wheel.name
    assert re.fullmatch(r"manylinux_2_\d+_x86_64(\.manylinux_2_\d+_x86_64|\.manylinux\w+)*", tag), tag
    show = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)], check=True, capture_output=True, text=True
    ).stdout
    floor = re.search(r'consistent with the following platform tag: "(manylinux_2_\d+_x86_64)"', " ".join(show.split()))
    assert floor, show
    assert floor.group(1) in tag.split("."), (show, tag)
    with zipfile.ZipFile(wheel) as z:
        info = z.getinfo("cryptcount/_bin/cryptcount")
        assert (info.external_attr >> 16) & 0o111, "the executable lost its x bits"
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))).decode()
        assert "Root-Is-Purelib: false" in meta, meta
        entry = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
        assert "cryptcount = cryptcount._cli:main" in entry, entry


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def clean_env(venv_dir: Path) -> Dict[str, str]:
    """No $CRYPTCOUNT_BIN, and a PATH of the venv and the system only (no build directory, no toolchain)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTCOUNT", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join([str(venv_dir / "bin"), "/usr/bin", "/bin"])
    return env


def pip_install(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], check=True)


@pytest.fixture(scope="session")
def wheel_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("wheel-venv")
    python = make_venv(where)
    pip_install(python, str(wheel))
    return where


def readme_python_example() -> str:
    """The README's first Python example (section "As a coprocess")."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### As a coprocess") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_readme_example_runs_from_the_installed_wheel(
    wheel_venv: Path, hide_toolchain: List[str], tmp_path: Path
) -> None:
    env = clean_env(wheel_venv)
    python = wheel_venv / "bin" / "python"
    # The stories: encrypted with the wheel's own `cryptcount encrypt` (biographer, as in the
    # example), each with a known number of "rain".
    (tmp_path / "pass").write_text("hunter2\n")
    expected = {}
    for i, n in enumerate([0, 1, 3, 7]):
        plain = tmp_path / f"story{i}.txt"
        plain.write_text("It was a long day. " * 50 + "The rain came down. " * n + "The end.\n")
        target = tmp_path / f"story{i}.bio"
        subprocess.run(
            [str(wheel_venv / "bin" / "cryptcount"), "encrypt", "--cipher", "biographer",
             "--secret-file", str(tmp_path / "pass"), str(plain), str(target)],
            check=True, env=env,
        )  # fmt: skip
        plain.unlink()
        expected[str(target)] = n
    program = (
        "import cryptcount._transport as t, sys\n"
        "assert t.find_binary() == t.BUNDLED_BINARY, t.find_binary()\n"
        f"story_paths = {sorted(expected)!r}\n" + readme_python_example()
    )
    run = subprocess.run(
        [*hide_toolchain, str(python), "-c", program], capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    printed = {}
    for line in run.stdout.splitlines():
        path, counts = re.match(r"(\S+) \[(\d+)\]", line).groups()  # type: ignore[union-attr]
        printed[path] = int(counts)
    assert printed == expected, run.stdout


def test_console_command_and_python_m_run_the_bundled_binary(
    wheel_venv: Path, hide_toolchain: List[str], dist_bin: Path, tmp_path: Path
) -> None:
    env = clean_env(wheel_venv)
    version = subprocess.run([str(dist_bin), "--version"], check=True, capture_output=True, text=True).stdout
    (tmp_path / "notes.txt").write_text("todo: a\ntodo: b\n")
    for argv in ([str(wheel_venv / "bin" / "cryptcount")], [str(wheel_venv / "bin" / "python"), "-m", "cryptcount"]):
        run = subprocess.run([*hide_toolchain, *argv, "--version"], capture_output=True, text=True, env=env)
        assert run.returncode == 0 and run.stdout == version, run
        run = subprocess.run(
            [*hide_toolchain, *argv, "count", "-t", "todo", "--json", str(tmp_path / "notes.txt")],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout.splitlines()[0])["counts"] == [2], run.stdout


def test_pure_python_install_still_finds_the_binary_as_before(dist_bin: Path, tmp_path: Path) -> None:
    python = make_venv(tmp_path / "venv")
    pip_install(python, str(ROOT / "examples" / "python"))
    env = clean_env(tmp_path / "venv")
    program = (
        "import cryptcount, cryptcount._transport as t\n"
        "assert t.bundled_binary() is None\n"
        "with cryptcount.Coprocess() as cc: print(cc.server_info['version'])\n"
    )
    run = subprocess.run([str(python), "-c", program], capture_output=True, text=True, env=env)
    assert run.returncode != 0 and "BinaryNotFound" in run.stderr, run  # nothing to run
    env["CRYPTCOUNT_BIN"] = str(dist_bin)
    run = subprocess.run([str(python), "-c", program], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "venv" / "bin" / "cryptcount").exists()  # no command shadows a real one


# -- man page and completions -------------------------------------------------------------------


def command_definitions(dist_bin: Path) -> Dict[str, List[str]]:
    """{subcommand: its long flags} from the executable's own description of its commands."""
    dump = json.loads(
        subprocess.run([str(dist_bin), "--experimental-dump-help"], check=True, capture_output=True).stdout
    )
    out: Dict[str, List[str]] = {}
    for sub in dump["command"]["subcommands"]:
        if sub["commandName"] == "help":
            continue
        flags = []
        for arg in sub.get("arguments", []):
            for name in arg.get("names", []):
                if name["kind"] == "long" and name["name"] not in ("help", "version"):
                    flags.append("--" + name["name"])
        out[sub["commandName"]] = flags
    return out


@pytest.mark.parametrize(
    "artefact",
    ["man/cryptcount.1", "completions/cryptcount.bash", "completions/_cryptcount", "completions/cryptcount.fish"],
)
def test_man_page_and_completions_name_every_subcommand_and_flag(dist_bin: Path, artefact: str) -> None:
    path = DIST / artefact
    _require(path)
    text = path.read_text()
    if artefact.endswith(".1"):
        # mdoc: `Fl -workers` and `Fl t , -term` are rendered --workers, -t, --term
        text = re.sub(r"(?:(?<=\bFl )|(?<=, ))-", "--", text)
    definitions = command_definitions(dist_bin)
    assert set(definitions) >= {"serve", "frame", "unframe", "count", "encrypt"}, definitions
    missing = []
    for sub, flags in definitions.items():
        if not re.search(rf"\b{sub}\b", text):
            missing.append(sub)
        for flag in flags:
            bare = flag[2:]
            # fish writes `-l max-frame`, the others `--max-frame`.
            if flag not in text and not (artefact.endswith(".fish") and re.search(rf"-l '?{re.escape(bare)}\b", text)):
                missing.append(f"{sub} {flag}")
    assert not missing, f"{artefact} lacks {missing}"


def test_make_install_puts_binary_man_page_and_completions_under_prefix(dist_bin: Path, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    subprocess.run(
        ["make", "-C", str(ROOT), "install", f"DESTDIR={stage}", "PREFIX=/opt/cc", f"DIST={DIST}"],
        check=True, capture_output=True,
    )  # fmt: skip
    prefix = stage / "opt" / "cc"
    installed = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
    assert installed == [
        "bin/cryptcount",
        "share/bash-completion/completions/cryptcount",
        "share/fish/vendor_completions.d/cryptcount.fish",
        "share/man/man1/cryptcount.1",
        "share/zsh/site-functions/_cryptcount",
    ]
    assert (prefix / "bin" / "cryptcount").read_bytes() == dist_bin.read_bytes()
    # bash loads the completion script and registers it for the command.
    bash = subprocess.run(
        ["bash", "-c", f"source {prefix}/share/bash-completion/completions/cryptcount && complete -p cryptcount"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bash.returncode == 0 and "cryptcount" in bash.stdout, bash


# -- librnp, loaded on first use ----------------------------------------------------------------


def test_wheel_openpgp_loads_the_bundled_librnp(wheel: Path, wheel_venv: Path, tmp_path: Path) -> None:
    """The executable dlopens librnp only for OpenPGP (Sources/CLibRNPLoader), through the wheel's
    libcryptcount-rnp.so next to it: the wheel's own librnp, even with the system's hidden."""
    gpg = shutil.which("gpg")
    if gpg is None or shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs gpg, and root for a private mount namespace")
    with zipfile.ZipFile(wheel) as z:
        assert "cryptcount/_bin/libcryptcount-rnp.so" in z.namelist(), z.namelist()
    system = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    found = re.search(r"librnp\.so\.0 .*=> (\S+)", system)
    hide: List[str] = []
    if found:  # /dev/null bound over the system's librnp: dlopen("librnp.so.0") fails
        real = os.path.realpath(found.group(1))
        hide = ["unshare", "-m", "sh", "-c", f"mount --bind /dev/null {shlex.quote(real)} && exec \"$@\"", "sh"]
    home = Path(tempfile.mkdtemp(prefix="ccd", dir="/tmp")) / "g"  # short: gpg-agent's socket
    home.mkdir(mode=0o700)
    genv = dict(os.environ, GNUPGHOME=str(home))
    pw = b"dist test passphrase\n"
    base = [gpg, "--batch", "--yes", "--no-tty", "--quiet", "--trust-model", "always"]
    loop = ["--pinentry-mode", "loopback", "--passphrase-fd", "0"]
    try:
        def g(*args: str, inp: Optional[bytes] = None) -> bytes:
            return subprocess.run(base + list(args), input=inp, env=genv, capture_output=True, check=True).stdout

        g(*loop, "--quick-gen-key", "Dee <dee@example.org>", "future-default", "default", "never", inp=pw)
        (tmp_path / "keys.asc").write_bytes(g(*loop, "--armor", "--export-secret-keys", "dee@example.org", inp=pw))
        (tmp_path / "plain.txt").write_text("the rain, the plain, the end\n")
        g("--encrypt", "-r", "dee@example.org", "-o", str(tmp_path / "s.gpg"), str(tmp_path / "plain.txt"))
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=genv, capture_output=True)
        shutil.rmtree(home.parent, ignore_errors=True)
    (tmp_path / "pw").write_bytes(pw)
    env = dict(clean_env(wheel_venv), LD_DEBUG="files")
    run = subprocess.run(
        [*hide, str(wheel_venv / "bin" / "cryptcount"), "count", "--json", "--cipher", "openpgp",
         "--keys-file", str(tmp_path / "keys.asc"), "--secret-file", str(tmp_path / "pw"), "-t", "the",
         str(tmp_path / "s.gpg")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.splitlines()[0])["counts"] == [3], run.stdout
    # auditwheel renamed the wheel's copy librnp-HASH.so.N: that is the one loaded.
    assert re.search(r"file=\S*librnp-[0-9a-f]{8}\.so", run.stderr), run.stderr[-3000:]
    assert not re.search(r"file=\S*librnp\.so\.0\b", run.stderr), run.stderr[-3000:]
