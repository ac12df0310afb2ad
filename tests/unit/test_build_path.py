"""conda-store's 255-character rule on ``<store>/<namespace>/<build key>``."""

from __future__ import annotations

from pathlib import Path

from shared.build_path import build_path, is_too_long
from shared.settings import Settings


def test_build_path_is_store_namespace_key_and_255_characters_fit() -> None:
    store = Path("/srv/store")
    path = build_path(store, "team", "bfa61b4d-1795464966-1-name1")
    assert path == Path("/srv/store/team/bfa61b4d-1795464966-1-name1")
    fits = build_path(store, "team", "k" * (255 - len("/srv/store/team/")))
    assert len(str(fits)) == 255 and not is_too_long(fits)
    assert is_too_long(build_path(store, "team", "k" * (256 - len("/srv/store/team/"))))


def test_store_directory_defaults_under_the_data_dir_and_is_absolute(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).store_root == tmp_path / "store"
    assert Settings(data_dir=tmp_path, store_directory=tmp_path / "s").store_root == tmp_path / "s"
    assert Settings(store_directory=Path("rel")).store_root.is_absolute()
