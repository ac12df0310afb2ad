"""Recipe logic of the wheel-built test channels, without downloading or building them."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.channels.condapkg import PackageMeta
from tests.channels.jupyter import JUPYTER
from tests.channels.large import LARGE, growth_order
from tests.channels.pinned import PinnedChannel
from tests.channels.wheelchannel import missing_dependencies
from tests.channels.wheelfetch import select_wheel
from tests.channels.wheelrepack import conda_name, read_wheel, wheel_meta
from tests.channels.wheels import make_wheel


def test_read_wheel_keeps_non_ascii_metadata_as_text(tmp_path: Path) -> None:
    # jupyter_server's Summary and matplotlib's License are UTF-8 (em dashes, a long text).
    summary = "The backend—i.e. core services—to Jupyter web applications."
    wheel = make_wheel(
        tmp_path,
        "nonascii",
        "1.0",
        "",
        {},
        metadata=(f"Summary: {summary}", "License: Copyright © 2015 Ünïcode Contributors"),
    )
    info = read_wheel(wheel)
    assert info.summary == summary
    assert info.license == "Copyright © 2015 Ünïcode Contributors"
    assert wheel_meta(info, "3.11").summary == summary


def test_conda_depends_normalises_names_drops_extras_and_foreign_markers(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "recipe_demo",
        "1.0",
        "",
        {},
        metadata=(
            "Requires-Python: >=3.9",
            "Requires-Dist: jsonschema[format-nongpl]>=4.18.0",
            "Requires-Dist: Jinja2>=3.0.3",
            "Requires-Dist: zope.interface",
            "Requires-Dist: typing_extensions>=4; python_version < '3.11'",
            "Requires-Dist: exceptiongroup; python_version < '3.12'",
            "Requires-Dist: pywin32>=300; sys_platform == 'win32'",
            "Requires-Dist: pytest; extra == 'test'",
        ),
    )
    meta = wheel_meta(read_wheel(wheel), "3.11")
    assert meta.name == "recipe-demo" and meta.noarch == "python"
    assert meta.depends == [
        "exceptiongroup",
        "jinja2 >=3.0.3",
        "jsonschema >=4.18.0",
        "python >=3.9",
        "zope-interface",
    ]


def test_select_wheel_matches_normalised_pins_and_prefers_binary_for_best() -> None:
    files = [
        "charset_normalizer-3.5.3-py3-none-any.whl",
        "charset_normalizer-3.5.3-cp311-cp311-manylinux_2_28_x86_64.whl",
        "charset_normalizer-3.5.2-py3-none-any.whl",
        "PyYAML-6.0.4-cp311-cp311-manylinux_2_17_x86_64.whl",
        "zope.interface-7.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "certifi-2026.10.19.post1-py3-none-any.whl",
        "README.txt",
    ]
    binary = "charset_normalizer-3.5.3-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert select_wheel(files, "charset-normalizer==3.5.3", "best") == binary
    assert select_wheel(files, "charset-normalizer==3.5.3", "binary") == binary
    pure = "charset_normalizer-3.5.3-py3-none-any.whl"
    assert select_wheel(files, "charset-normalizer==3.5.3", "pure") == pure
    assert select_wheel(files, "pyyaml==6.0.4", "best") == files[3]
    assert select_wheel(files, "zope-interface==7.0.0", "best") == files[4]
    assert select_wheel(files, "certifi==2026.10.19.post1", "pure") == files[5]
    assert select_wheel(files, "pyyaml==6.0.4", "pure") is None
    assert select_wheel(files, "idna==3.20", "best") is None


def test_missing_dependencies_names_absent_packages_and_unmet_versions() -> None:
    metas = [
        PackageMeta("python", "3.11.7", "0_cpython", depends=["python_abi 3.11.* *_cp311"]),
        PackageMeta("python_abi", "3.11", "8_cp311"),
        PackageMeta("ok", "1.0", "py_0", subdir="noarch", depends=["python >=3.9", "dep >=2,<3"]),
        PackageMeta("dep", "2.5.post1", "py_0", subdir="noarch"),
        PackageMeta("old", "1.0", "py_0", subdir="noarch", depends=["dep >=3", "gone"]),
        PackageMeta("binary", "1.0", "py311_0", depends=["python >=3.11,<3.12.0a0"]),
    ]
    assert missing_dependencies(metas) == {
        "old-1.0-py_0": ["dep >=3 (have 2.5.post1)", "gone (not in the channel)"]
    }
    assert missing_dependencies(metas[:4]) == {}


def test_growth_order_prefixes_are_closed_environments() -> None:
    depends = {
        "python": ["python_abi"],
        "python_abi": [],
        "numpy": ["python", "python_abi"],
        "pandas": ["numpy", "python-dateutil", "python"],
        "python-dateutil": ["six", "python"],
        "six": ["python"],
        "zzz": ["python"],
        "aaa": ["six"],
    }
    order = growth_order(depends, roots=("python", "numpy", "pandas"))
    assert order == [
        "python_abi",
        "python",
        "numpy",
        "six",
        "python-dateutil",
        "pandas",
        "aaa",
        "zzz",
    ]
    for n in range(1, len(order) + 1):
        taken = set(order[:n])
        assert all(set(depends[name]) <= taken for name in taken), order[:n]
    del depends["python-dateutil"]
    with pytest.raises(KeyError, match="pandas depends on python-dateutil"):
        growth_order(depends, roots=("pandas",))


@pytest.mark.parametrize("recipe", [JUPYTER, LARGE], ids=lambda r: r.name)
def test_pinned_recipes_pin_every_requirement_once_by_normalised_name(
    recipe: PinnedChannel,
) -> None:
    pins = recipe.pins()
    names = [pin.partition("==")[0] for pin in pins]
    assert all(pin.count("==") == 1 for pin in pins)
    assert names == sorted(set(names)), "one pin per name, sorted"
    assert all(name == conda_name(name) for name in names)
    for requirement in recipe.requirements:
        wanted = Requirement(requirement)
        version = dict(pin.split("==") for pin in pins)[conda_name(wanted.name)]
        assert wanted.specifier.contains(version), (requirement, version)


def test_large_recipe_is_data_science_sized() -> None:
    names = {pin.partition("==")[0] for pin in LARGE.pins()}
    # python and python_abi come from the interpreter, on top of the wheels
    assert len(names) + 2 >= 150
    assert {"jupyterlab", "pandas", "scipy", "scikit-learn", "matplotlib", "ipykernel"} <= names
    assert dict(p.split("==") for p in LARGE.pins())["numpy"] == "2.4.6"
