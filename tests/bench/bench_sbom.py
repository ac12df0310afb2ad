"""SBOM benchmark: the CycloneDX 1.5 document of a ~300-package build, as the packer makes it.

Times ``shared.sbom.build_sbom`` (cyclonedx-python-lib) for 300 packages (270 conda, 30 pip,
each with hashes, a license, a URL and a summary) beside the baseline of the same run: the
package list dumped as plain JSON, the floor of any serialization. Prints the document's size
(raw and gzipped) and, separately, how long the schema validation the tests use takes (the
library's strict JSON validator: seconds for 300 packages, so the tests validate small lists).

    python -m tests.bench.bench_sbom [--packages 300] [--runs 20]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from shared.events import PackageRef
from shared.sbom import SbomSubject, build_sbom

CHANNEL = "https://conda.anaconda.org/conda-forge"
LICENSES = ["MIT", "BSD-3-Clause", "Apache-2.0", "GPL-2.0-or-later", "LGPL-2.1-only OR MIT"]


def packages(count: int) -> list[PackageRef]:
    """A realistic build's list: every tenth package from pip, the rest from conda-forge."""
    found = []
    for i in range(count):
        sha = hashlib.sha256(str(i).encode()).hexdigest()
        name = f"package-{i:03d}"
        if i % 10 == 9:
            found.append(
                PackageRef(
                    manager="pip",
                    name=name,
                    version=f"2.{i}.0",
                    url=f"https://files.pythonhosted.org/packages/{name}-2.{i}.0-py3-none-any.whl",
                    sha256=sha,
                    license=LICENSES[i % len(LICENSES)],
                )
            )
            continue
        build = f"py311h{sha[:8]}_0"
        found.append(
            PackageRef(
                name=name,
                version=f"1.{i}.0",
                build=build,
                channel=CHANNEL,
                subdir="linux-64",
                url=f"{CHANNEL}/linux-64/{name}-1.{i}.0-{build}.conda",
                sha256=sha,
                md5=sha[:32],
                size=1_000_000 + i,
                license=LICENSES[i % len(LICENSES)],
                summary=f"The {name} library, a test package of the benchmark",
            )
        )
    return found


def timed(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """(median milliseconds, last result) over ``runs`` calls after one warm-up."""
    result = fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    listed = packages(args.packages)
    subject = SbomSubject("bench", "science", 1, "0a1b2c3d-1-science", datetime.now(UTC))

    sbom_ms, document = timed(lambda: build_sbom(subject, listed), args.runs)
    assert isinstance(document, bytes)
    plain_ms, plain = timed(
        lambda: json.dumps([p.model_dump() for p in listed]).encode(), args.runs
    )
    assert isinstance(plain, bytes)
    validator = JsonStrictValidator(SchemaVersion.V1_5)
    text = document.decode()
    validate_ms, error = timed(lambda: validator.validate_str(text), 1)  # slow: once
    assert error is None, error
    components = len(json.loads(document)["components"])

    print(f"SBOM of {args.packages} packages ({components} components), median of {args.runs}")
    print(f"  {'':28} {'ms':>8} {'bytes':>9} {'gzipped':>9}")
    for label, ms, data in (
        ("build_sbom (CycloneDX 1.5)", sbom_ms, document),
        ("baseline: json.dumps list", plain_ms, plain),
    ):
        print(f"  {label:28} {ms:8.1f} {len(data):9,} {len(gzip.compress(data)):9,}")
    print(f"  {'schema validation (tests)':28} {validate_ms:8.1f}")
    print(
        f"  per package: {sbom_ms / args.packages * 1000:.0f} µs, {len(document) // components} B"
    )


if __name__ == "__main__":
    main()
