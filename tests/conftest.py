"""Test harness entry: each fixture module below starts real, throwaway servers on free ports."""

pytest_plugins = [
    # harness fixture modules are registered here, one line each
    "tests.harness.fixtures_channels",
    "tests.harness.fixtures_core",
    "tests.harness.fixtures_stack",
    "tests.harness.fixtures_s3",
    "tests.harness.embedded_stack",
    "tests.harness.fixtures_ui",
]
