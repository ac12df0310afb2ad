"""One settings model for every service, read from environment variables (12-factor).

Every variable is prefixed ``CONDA_STORE_`` (e.g. ``CONDA_STORE_API_PORT=9000``); ``DATABASE_URL``
and ``NATS_URL`` are also accepted bare because deployment tools set them that way.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.public_url import normalize_prefix


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONDA_STORE_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".data"), description="Embedded stack state (db, nats, artifacts)."
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CONDA_STORE_DATABASE_URL", "DATABASE_URL"),
        description="postgresql:// URL; unset means the embedded cluster in data_dir.",
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("CONDA_STORE_NATS_URL", "NATS_URL"),
        description="One nats:// URL, or several separated by commas (the servers of a cluster).",
    )
    nats_stream: str = "CONDA_STORE_EVENTS"
    nats_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Copies JetStream keeps of the events stream and of every durable consumer "
        "(3 on a cluster of three nats-servers survives losing one).",
    )
    subject_prefix: str = "condastore"

    store_directory: Path | None = Field(
        default=None,
        description="conda-store's store_directory: builds live at "
        "<store>/<namespace>/<build key>; default data_dir/store.",
    )

    watch_paths: str = Field(
        default="",
        description="conda-store's watch_paths: directories of environment YAML files (or "
        "single files), separated by ':' or ','; each file is built into the filesystem "
        "namespace and rebuilt when its content changes.",
    )
    update_check_interval_s: float = Field(
        default=86400.0,
        ge=0,
        description="Seconds between two scheduled update checks of an environment's current "
        "build (a re-solve of its spec, nothing built); 0 turns the schedule off (checks on "
        "request still run).",
    )
    watch_interval_s: float = Field(
        default=60.0, gt=0, description="Seconds between two scans of watch_paths."
    )

    artifact_backend: Literal["local", "s3"] = "local"
    artifact_dir: Path | None = Field(
        default=None, description="Local backend root; default data_dir/artifacts."
    )
    s3_endpoint: str = "127.0.0.1:9000"
    s3_external_endpoint: str | None = None
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "conda-store"
    s3_region: str = "us-east-1"
    s3_secure: bool = False

    bind_host: str = "127.0.0.1"
    api_port: int = 8080
    registry_port: int = 5000
    ui_port: int = 8081
    solver_health_port: int = 8082
    packer_health_port: int = 8083
    relay_health_port: int = 8084
    projector_health_port: int = 8085
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024,
        description="Largest request body any HTTP service accepts (413 above it, chunked too).",
    )
    http_keep_alive_s: float = Field(
        default=75.0,
        description="Seconds an HTTP server keeps an idle connection open. Keep it above the "
        "idle timeout of every client and proxy in front (often 5-60 s), so the server never "
        "closes a connection just as a client reuses it.",
    )
    external_url: str | None = Field(
        default=None,
        description="Public base URL of the API gateway; unset means each request's own "
        "(Host, X-Forwarded-Proto/Host/Port/Prefix).",
    )
    url_prefix: str = Field(
        default="",
        description="Path every route lives under (conda-store's url_prefix, e.g. /conda-store); "
        "the registry's /v2/ never takes it.",
    )
    registry_external_url: str | None = Field(
        default=None,
        description="host[:port] in image references; unset means the request's host with "
        "registry_port.",
    )
    ui_url: str | None = Field(default=None, description="Where the API finds the ui service.")
    api_url: str | None = Field(
        default=None,
        description="Where the ui service finds the API gateway; default http://<bind_host>:<api_port>.",
    )
    ui_oauth_login_url: str | None = Field(
        default=None, description="When set, the login page offers an OAuth button linking here."
    )

    secret: str = Field(
        default="", description="JWT signing secret; empty means one kept in data_dir."
    )
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    leader_lease_s: float = Field(
        default=10.0,
        gt=0,
        description="A relay or projector that has not spoken to Postgres for this long (hung, "
        "paused, cut off) loses its role, and a standby takes over.",
    )
    consumer_max_deliver: int = Field(
        default=5,
        description="Attempts a worker makes at one message (counted when one really starts); "
        "the last failure becomes the worker's failure event (e.g. BuildFailed).",
    )
    consumer_ack_wait_s: float = Field(
        default=30.0,
        description="JetStream's ack wait; running work extends it with in-progress acks.",
    )
    consumer_lease_s: float | None = Field(
        default=None,
        description="Term of the lease that keeps a redelivered message from running beside "
        "its running attempt (renewed every third of it); unset means the ack wait.",
    )
    solve_timeout_s: float = 300.0
    repodata_ttl_s: float = Field(
        default=60.0, description="Seconds the solver trusts in-memory repodata."
    )
    solve_cache_max_age_days: float = Field(
        default=30.0,
        description="Solve-cache entries unused for this long are deleted (0 keeps them all).",
    )
    pip_index_url: str | None = Field(default=None, description="pip index; None means PyPI.")
    pip_find_links: str | None = Field(default=None, description="Wheel dir or URL for pip.")
    pip_no_index: bool = Field(default=False, description="Resolve pip from find-links only.")
    solver_test_delay_s: float = Field(
        default=0.0, description="Test-only: sleep this long in the solver before committing."
    )
    packer_concurrency: int = 2
    build_worker_nice: int = Field(
        default=10,
        description="CPU niceness added to the solver and packer processes, so that when builds "
        "fill the CPUs the API, ui and registry still answer at once (0 keeps them equal).",
    )
    packer_pkgs_cache_gb: float = Field(
        default=50.0,
        description="Cap on rattler's extracted package cache shared by packers and image "
        "builders (least recently used go first, never while an install links); 0 means no cap.",
    )
    packer_segment_cache_gb: float = Field(
        default=20.0,
        description="Cap on the compressed package members the packer reuses (least recently"
        " used go first); 0 means no cap.",
    )
    packer_pack_threads: int = Field(
        default=0, description="gzip threads for conda-pack; 0 means one per CPU."
    )
    packer_test_delay_s: float = Field(
        default=0.0,
        description="Test-only: the packer sleeps this long after linking (a window to read "
        "live logs, cancel or kill a build). Leave 0 in production.",
    )

    registry_test_delay_s: float = Field(
        default=0.0,
        description="Test-only: the image builder waits this long before building (a window to "
        "kill a registry mid-build). Leave 0 in production.",
    )
    registry_image_prefix: str = Field(
        default="/opt/conda",
        description="Prefix every environment is installed at inside images (one for all, so "
        "package layers are shared between environments).",
    )
    registry_base_image: str | None = Field(
        default=None,
        description="Upstream base image (e.g. docker.io/library/debian:bookworm-slim, best "
        "pinned by digest) whose layers go under every image; it must provide glibc. Unset "
        "means the offline base (busybox + the host's glibc and linked libraries).",
    )
    registry_base_insecure: bool = Field(
        default=False, description="Pull the base image over plain HTTP (a private registry)."
    )
    registry_base_username: str | None = None
    registry_base_password: str | None = None
    dynamic_image_channels: list[str] = Field(
        default_factory=lambda: ["conda-forge"],
        description="Channels of on-demand images (conda-store-dynamic/...).",
    )
    registry_wait_timeout_s: float = Field(
        default=900.0, description="How long a pull waits for an image that is being built."
    )
    registry_tag_cache_s: float = Field(
        default=1.0,
        description="Seconds the registry may reuse a resolved `latest` (also dropped on events).",
    )

    @field_validator("url_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        return normalize_prefix(value)

    @property
    def lease_term_s(self) -> float:
        return self.consumer_lease_s or self.consumer_ack_wait_s

    @property
    def artifact_root(self) -> Path:
        return self.artifact_dir or self.data_dir / "artifacts"

    @property
    def store_root(self) -> Path:
        """The store directory as an absolute path (its length counts: see build_path)."""
        return (self.store_directory or self.data_dir / "store").absolute()

    @property
    def watch_path_list(self) -> list[Path]:
        return [Path(p.strip()) for p in re.split(r"[:,]", self.watch_paths) if p.strip()]

    def subject(self, event_type: str) -> str:
        return f"{self.subject_prefix}.events.{event_type}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
