"""The tiny channel: a dozen small, real conda packages built in well under a second.

Contents (what the tests rely on):

- `libfoo` 0.9 (`.tar.bz2`) and 1.0 (`.conda`), linux-64, each installing
  `lib/libfoo-version.txt` with its version;
- `bar` 2.0 (linux-64) depending on `libfoo >=1.0`;
- `baz` 1.0 (`noarch: generic`) depending on `libfoo >=0.9,<2`;
- `hello-cli` 0.1.0 (`noarch: python`): module `hello_cli`, entry point `hello = hello_cli:main`,
  depending on `python >=3.8`;
- `python` 3.11.0 (build `0_stub`, linux-64): a *stub*, not CPython. rattler cannot link a
  noarch python package without a `python` record in the environment (it derives
  `lib/python3.11/site-packages` and the entry-point shebang from it), so the channel carries one.
  Its `bin/python3.11` is a shell script that runs the host's real interpreter (the one that
  built the channel, else `/usr/bin/python3`; override with `$TINY_CHANNEL_PYTHON`) with this
  prefix's site-packages on `PYTHONPATH`. Enough to run `hello`; not a portable Python: images
  and archives that must run Python use the realistic channel;
- `withprefix` 1.0 (linux-64): `etc/withprefix/prefix.txt` and `bin/withprefix-where` carry
  the placeholder prefix (listed in `has_prefix`), so installs show the real prefix;
- `conflict-a` 1.0 (needs `libfoo 0.9.*`) and `conflict-b` 1.0 (needs `libfoo >=1.0`): together
  they are unsatisfiable.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.channels.condapkg import (
    PREFIX_PLACEHOLDER,
    PackageFormat,
    PackageMeta,
    build_package,
    index_channel,
    write_file,
)

HELLO_MODULE = '''"""hello-cli: the tiny channel's noarch: python package."""

import sys

__version__ = "0.1.0"


def main() -> int:
    major, minor = sys.version_info[:2]
    print(f"hello from hello-cli {__version__} (python {major}.{minor})")
    return 0
'''

_STUB_PYTHON = """#!/bin/sh
# Stub "python" of the conda-store-es tiny test channel: not CPython. It runs a real
# interpreter with this prefix's site-packages first on the module path.
prefix="${{0%/*}}/.."
real="${{TINY_CHANNEL_PYTHON:-{host}}}"
[ -x "$real" ] || real=/usr/bin/python3
PYTHONPATH="$prefix/lib/python3.11/site-packages${{PYTHONPATH:+:$PYTHONPATH}}" \\
PYTHONNOUSERSITE=1 exec "$real" "$@"
"""


def _host_python() -> str:
    """The real interpreter behind the running one (outside any virtualenv)."""
    major, minor = sys.version_info[:2]
    candidate = Path(sys.base_prefix) / "bin" / f"python{major}.{minor}"
    return str(candidate if candidate.exists() else Path(sys.executable))


def _stage_python(staging: Path) -> None:
    write_file(staging, "bin/python3.11", _STUB_PYTHON.format(host=_host_python()), executable=True)
    for alias in ("python", "python3"):
        (staging / "bin" / alias).symlink_to("python3.11")
    write_file(staging, "lib/python3.11/site-packages/README.tiny-stub", "stub python\n")


def _stage_hello(staging: Path) -> None:
    write_file(staging, "site-packages/hello_cli/__init__.py", HELLO_MODULE)
    dist = "site-packages/hello_cli-0.1.0.dist-info"
    write_file(
        staging, f"{dist}/METADATA", "Metadata-Version: 2.1\nName: hello-cli\nVersion: 0.1.0\n"
    )
    write_file(staging, f"{dist}/INSTALLER", "conda\n")


def _stage_withprefix(staging: Path) -> None:
    write_file(staging, "etc/withprefix/prefix.txt", f"installed at {PREFIX_PLACEHOLDER}\n")
    script = f'#!/bin/sh\necho "{PREFIX_PLACEHOLDER}"\n'
    write_file(staging, "bin/withprefix-where", script, executable=True)


def _files(*pairs: tuple[str, str]) -> Callable[[Path], None]:
    def stage(staging: Path) -> None:
        for rel, content in pairs:
            write_file(staging, rel, content)

    return stage


def _packages() -> list[tuple[PackageMeta, Callable[[Path], None], PackageFormat]]:
    """Every package of the channel: metadata, a function staging its payload, its format."""
    t0 = 1_700_000_000_000
    return [
        (
            PackageMeta("libfoo", "0.9", "h0_0", timestamp_ms=t0),
            _files(("lib/libfoo-version.txt", "0.9\n")),
            ".tar.bz2",
        ),
        (
            PackageMeta("libfoo", "1.0", "h0_0", timestamp_ms=t0 + 1000),
            _files(("lib/libfoo-version.txt", "1.0\n")),
            ".conda",
        ),
        (
            PackageMeta("bar", "2.0", "h0_0", depends=["libfoo >=1.0"], timestamp_ms=t0 + 2000),
            _files(("share/bar/bar.txt", "bar 2.0\n")),
            ".conda",
        ),
        (
            PackageMeta(
                "baz",
                "1.0",
                "0",
                subdir="noarch",
                noarch="generic",
                depends=["libfoo >=0.9,<2"],
                timestamp_ms=t0 + 3000,
            ),
            _files(("share/baz/baz.txt", "baz 1.0\n")),
            ".tar.bz2",
        ),
        (
            PackageMeta("python", "3.11.0", "0_stub", license="PSF-2.0", timestamp_ms=t0 + 4000),
            _stage_python,
            ".conda",
        ),
        (
            PackageMeta(
                "hello-cli",
                "0.1.0",
                "pyh0_0",
                subdir="noarch",
                noarch="python",
                depends=["python >=3.8"],
                entry_points=["hello = hello_cli:main"],
                timestamp_ms=t0 + 5000,
            ),
            _stage_hello,
            ".conda",
        ),
        (
            PackageMeta("withprefix", "1.0", "h0_0", timestamp_ms=t0 + 6000),
            _stage_withprefix,
            ".tar.bz2",
        ),
        (
            PackageMeta(
                "conflict-a",
                "1.0",
                "0",
                subdir="noarch",
                noarch="generic",
                depends=["libfoo 0.9.*"],
                timestamp_ms=t0 + 7000,
            ),
            _files(("share/conflict/a.txt", "a\n")),
            ".conda",
        ),
        (
            PackageMeta(
                "conflict-b",
                "1.0",
                "0",
                subdir="noarch",
                noarch="generic",
                depends=["libfoo >=1.0"],
                timestamp_ms=t0 + 8000,
            ),
            _files(("share/conflict/b.txt", "b\n")),
            ".tar.bz2",
        ),
    ]


def build_tiny_channel(root: Path) -> Path:
    """Build and index the tiny channel in `root` (created if missing) and return `root`.

    Takes a fraction of a second, so it is rebuilt per test session rather than cached; the
    stub python embeds the host interpreter's path, which is another reason not to share it.
    """
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tiny-stage-") as tmp:
        for i, (meta, stage, fmt) in enumerate(_packages()):
            staging = Path(tmp) / str(i)
            staging.mkdir()
            stage(staging)
            build_package(meta, staging, root, fmt)
            shutil.rmtree(staging)
    index_channel(root)
    return root
