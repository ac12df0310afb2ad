"""Where pip packages come from, for the solver's ``uv pip compile`` and for installs alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipIndex:
    """The settings' pip index, overridden per spec by its own ``--index-url``-style options.

    Installs only ever get the settings' part (no trusted hosts), whose flags pip and uv spell
    the same; ``--allow-insecure-host`` is uv's spelling, used by the solver alone.
    """

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: str | None = None
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()

    def as_key(self) -> dict[str, object]:
        return {
            "index_url": self.index_url,
            "extra": list(self.extra_index_urls),
            "find_links": self.find_links,
            "no_index": self.no_index,
            "trusted": list(self.trusted_hosts),
        }

    def args(self) -> list[str]:
        args: list[str] = []
        if self.no_index:
            args.append("--no-index")
        elif self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        if self.find_links:
            args += ["--find-links", self.find_links]
        for host in self.trusted_hosts:
            args += ["--allow-insecure-host", host]
        return args
