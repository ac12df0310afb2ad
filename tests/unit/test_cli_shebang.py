"""Shebang scripts (``#!/usr/bin/env conda-store``) and the run command line (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.errors import CondaStoreError
from client.run import activation_command, rewrite_argv, shebang_args


def _script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(text)
    return path


def test_run_lines_add_arguments_and_the_script_comes_last(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "#!/usr/bin/env conda-store\n#! conda-store run ns/env:3 -- python\nprint(1)\n",
    )
    assert shebang_args(script) == ["run", "ns/env:3", "--", "python", str(script)]


def test_several_run_lines_and_quoting(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "#!/usr/bin/env conda-store  \n#! conda-store run --no-cache ns/env\n"
        "#!conda-store run -- python -X 'dev mode'\n# ordinary comment\n#! ignored\n",
    )
    assert shebang_args(script) == [
        "run",
        "--no-cache",
        "ns/env",
        "--",
        "python",
        "-X",
        "dev mode",
        str(script),
    ]


def test_other_scripts_are_not_rewritten(tmp_path: Path) -> None:
    script = _script(tmp_path, "#!/usr/bin/env python\nprint(1)\n")
    assert shebang_args(script) is None
    assert rewrite_argv([str(script), "x"]) == [str(script), "x"]
    assert rewrite_argv(["list", "namespace"]) == ["list", "namespace"]
    assert shebang_args(tmp_path / "missing") is None


def test_rewrite_keeps_the_scripts_own_arguments(tmp_path: Path) -> None:
    script = _script(tmp_path, "#!/usr/bin/env conda-store\n#! conda-store run 4 -- python\n")
    assert rewrite_argv([str(script), "a", "--flag"]) == [
        "run",
        "4",
        "--",
        "python",
        str(script),
        "a",
        "--flag",
    ]


def test_a_malformed_directive_is_reported(tmp_path: Path) -> None:
    script = _script(tmp_path, "#!/usr/bin/env conda-store\n#! conda-stor run 4\n")
    with pytest.raises(CondaStoreError, match="expected '#! conda-store run"):
        shebang_args(script)


def test_activation_quotes_the_directory_and_the_command() -> None:
    argv = activation_command(Path("/tmp/conda store/3"), ["python", "-c", "print('a b')"])
    assert argv[:2] == ["bash", "-c"]
    assert argv[2] == (
        ". '/tmp/conda store/3'/bin/activate '/tmp/conda store/3' && "
        "exec python -c 'print('\"'\"'a b'\"'\"')'"
    )
