"""conda's own notations, read by rattler: the one adapter the pure domain modules use.

``shared/spec`` and ``shared/runtime_settings`` stay free of rattler (a native library); what
they need from it, a MatchSpec's package name and this machine's subdir, is asked here, so
they accept exactly what the solver will. rattler is imported on first use, not at import.
"""

from __future__ import annotations


def conda_package_name(spec: str) -> str | None:
    """The (normalized) package name of a conda MatchSpec, or None if it does not parse."""
    import rattler

    try:
        return rattler.MatchSpec(spec).name.normalized
    except Exception:  # rattler raises its own exception hierarchy
        return None


def current_platform() -> str:
    """The conda subdir of this machine (e.g. ``linux-64``), conda-store's platform default."""
    import rattler

    return str(rattler.Subdir.current())


def compare_versions(manager: str, a: str, b: str) -> int:
    """conda's version order (rattler) for conda packages, PEP 440's for pip; a version one
    parser refuses is compared as text, so a diff never fails on an odd version string."""
    try:
        if manager == "pip":
            from packaging.version import Version

            left, right = Version(a), Version(b)
        else:
            import rattler

            left, right = rattler.Version(a), rattler.Version(b)
        return (left > right) - (left < right)
    except Exception:  # each parser raises its own errors
        return (a > b) - (a < b)
