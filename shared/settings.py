"""The one settings model of every service, read from environment variables (12-factor).

Every variable is prefixed ``CONDA_STORE_`` (e.g. ``CONDA_STORE_API_PORT=9000``); ``DATABASE_URL``
and ``NATS_URL`` are also accepted bare because deployment tools set them that way. JSON-valued
variables (``CONDA_STORE_PREDEFINED_TOKENS='{"tok": {"primary_namespace": "ci"}}'``) are parsed
by pydantic-settings. Fields are grouped by concern (one class each, in ``GROUPS``) so that
``docs/settings.md``, generated from them by ``shared.settings_doc``, reads by concern too.
Services take the whole model at their composition root; leaf helpers get plain values.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth.bindings import (
    AUTHENTICATED_ROLE_BINDINGS,
    UNAUTHENTICATED_ROLE_BINDINGS,
    RoleDefaults,
)
from shared.auth.credentials import AUTH_COOKIE_NAME
from shared.auth.tokens import DEFAULT_JWT_ALGORITHM
from shared.pip_index import PipIndex
from shared.public_url import normalize_prefix


class StorageSettings(BaseModel):
    """Where state, builds and artifacts live."""

    data_dir: Path = Field(
        default=Path(".data"),
        description="Embedded stack state (db, nats), caches, scratch and local artifacts.",
    )
    store_directory: Path | None = Field(
        default=None,
        description="conda-store's store_directory: builds live at "
        "<store>/<namespace>/<build key>; default data_dir/store.",
    )
    artifact_backend: Literal["local", "s3"] = Field(
        default="local", description="Where artifacts go: a local directory or an S3 API server."
    )
    artifact_dir: Path | None = Field(
        default=None, description="Local backend root; default data_dir/artifacts."
    )
    s3_endpoint: str = Field(default="127.0.0.1:9000", description="S3 API server host:port.")
    s3_external_endpoint: str | None = Field(
        default=None,
        description="host:port clients reach the S3 server at, in presigned links; default "
        "s3_endpoint.",
    )
    s3_access_key: str = Field(default="", description="S3 access key.")
    s3_secret_key: str = Field(default="", description="S3 secret key.")
    s3_bucket: str = Field(default="conda-store", description="Bucket (created when missing).")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_secure: bool = Field(default=False, description="Talk HTTPS to the S3 server.")


class EventsSettings(BaseModel):
    """The event store, the bus and how workers take work from it."""

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
    nats_stream: str = Field(
        default="CONDA_STORE_EVENTS", description="JetStream stream the relay publishes to."
    )
    nats_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Copies JetStream keeps of the events stream and of every durable consumer "
        "(3 on a cluster of three nats-servers survives losing one).",
    )
    subject_prefix: str = Field(
        default="condastore",
        description="First token of every NATS subject (<prefix>.events.<type>, <prefix>.solve).",
    )
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


class HTTPSettings(BaseModel):
    """Ports, public URLs and logging of the HTTP services."""

    bind_host: str = Field(default="127.0.0.1", description="Address every service listens on.")
    api_port: int = Field(default=8080, description="API gateway port.")
    registry_port: int = Field(default=5000, description="OCI registry port.")
    ui_port: int = Field(default=8081, description="ui service port.")
    solver_health_port: int = Field(default=8082, description="Solver /healthz and /metrics.")
    packer_health_port: int = Field(default=8083, description="Packer /healthz and /metrics.")
    relay_health_port: int = Field(default=8084, description="Relay /healthz and /metrics.")
    projector_health_port: int = Field(default=8085, description="Projector /healthz and /metrics.")
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
        description="Where the ui service finds the API gateway; default "
        "http://<bind_host>:<api_port>.",
    )
    log_level: str = Field(default="INFO", description="structlog level (DEBUG, INFO, ...).")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto means console on a terminal, JSON lines otherwise."
    )

    @field_validator("url_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        return normalize_prefix(value)


class AuthSettings(BaseModel):
    """Tokens, logins and conda-store's RBAC defaults (API gateway and registry)."""

    secret: str = Field(
        default="", description="JWT signing secret; empty means one kept in data_dir."
    )
    cookie_name: str = Field(default=AUTH_COOKIE_NAME, description="Session cookie's name.")
    jwt_algorithm: str = Field(default=DEFAULT_JWT_ALGORITHM, description="JWT algorithm.")
    predefined_tokens: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="JSON: token text to its claims (primary_namespace, role_bindings, ...).",
    )
    role_mappings_version: Literal[1, 2] = Field(
        default=1, description="conda-store's role mappings: 1 per namespace, 2 granted across."
    )
    unauthenticated_role_bindings: dict[str, list[str]] = Field(
        default_factory=lambda: {k: sorted(v) for k, v in UNAUTHENTICATED_ROLE_BINDINGS.items()},
        description="JSON: namespace/environment globs to roles of an anonymous caller.",
    )
    authenticated_role_bindings: dict[str, list[str]] = Field(
        default_factory=lambda: {k: sorted(v) for k, v in AUTHENTICATED_ROLE_BINDINGS.items()},
        description="JSON: globs to roles every logged-in caller has.",
    )
    dummy_password: str = Field(
        default="password", description="Password of the default login (any user name)."
    )
    ui_oauth_login_url: str | None = Field(
        default=None, description="When set, the login page offers an OAuth button linking here."
    )
    oauth_provider: Literal["", "generic", "github", "jupyterhub"] = Field(
        default="", description="OAuth login instead of the password login; empty means none."
    )
    oauth_client_id: str = Field(default="", description="OAuth client id.")
    oauth_client_secret: str = Field(default="", description="OAuth client secret.")
    oauth_authorize_url: str = Field(default="", description="generic: authorize endpoint.")
    oauth_access_token_url: str = Field(default="", description="generic: token endpoint.")
    oauth_user_data_url: str = Field(default="", description="generic: user-info endpoint.")
    oauth_user_data_key: str = Field(
        default="name", description="generic: user-info field holding the user name."
    )
    oauth_access_scope: str | None = Field(default=None, description="OAuth scope asked for.")
    oauth_callback_url: str | None = Field(
        default=None, description="Callback URL given to the provider; default the API's own."
    )
    oauth_github_url: str = Field(default="https://github.com", description="github: site.")
    oauth_github_api: str = Field(default="https://api.github.com", description="github: API.")
    oauth_jupyterhub_url: str = Field(default="", description="jupyterhub: the hub's URL.")

    @property
    def role_defaults(self) -> RoleDefaults:
        return RoleDefaults(
            self.unauthenticated_role_bindings,
            self.authenticated_role_bindings,
            self.role_mappings_version,
        )


class APISettings(BaseModel):
    """What only the API gateway does: paging, the UI mount, webhooks, scheduled checks."""

    max_page_size: int = Field(default=100, description="Largest page a list endpoint returns.")
    enable_ui: bool = Field(
        default=True, description="Serve the ui service's pages at / (conda-store's enable_ui)."
    )
    webhooks_enabled: bool = Field(
        default=True, description="Deliver events to registered webhooks (one API replica leads)."
    )
    webhook_retry_base_s: float = Field(
        default=1.0, gt=0, description="Wait after a webhook's first failed delivery (doubled)."
    )
    webhook_retry_cap_s: float = Field(
        default=300.0, gt=0, description="Longest wait between attempts; retried there forever."
    )
    webhook_failing_after: int = Field(
        default=5, ge=1, description="Failures in a row after which a webhook shows as failing."
    )
    update_check_interval_s: float = Field(
        default=86400.0,
        ge=0,
        description="Seconds between two scheduled update checks of an environment's current "
        "build (a re-solve of its spec, nothing built); 0 turns the schedule off (checks on "
        "request still run).",
    )
    watch_paths: str = Field(
        default="",
        description="conda-store's watch_paths: directories of environment YAML files (or "
        "single files), separated by ':' or ','; each file is built into the filesystem "
        "namespace and rebuilt when its content changes.",
    )
    watch_interval_s: float = Field(
        default=60.0, gt=0, description="Seconds between two scans of watch_paths."
    )


class SolverSettings(BaseModel):
    """How the solver resolves specs (conda and pip)."""

    solve_timeout_s: float = Field(default=300.0, description="Longest one solve may run.")
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

    @property
    def pip_index(self) -> PipIndex:
        return PipIndex(
            index_url=self.pip_index_url,
            find_links=self.pip_find_links,
            no_index=self.pip_no_index,
        )


class PackerSettings(BaseModel):
    """How the packer installs and archives builds."""

    packer_concurrency: int = Field(default=2, description="Builds one packer runs at once.")
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


class RegistrySettings(BaseModel):
    """How the registry makes and serves images."""

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
    registry_base_username: str | None = Field(
        default=None, description="User name for the base image's registry."
    )
    registry_base_password: str | None = Field(
        default=None, description="Password for the base image's registry."
    )
    dynamic_image_channels: list[str] = Field(
        default_factory=lambda: ["conda-forge"],
        description="JSON list: channels of on-demand images (conda-store-dynamic/...).",
    )
    registry_wait_timeout_s: float = Field(
        default=900.0, description="How long a pull waits for an image that is being built."
    )
    registry_tag_cache_s: float = Field(
        default=1.0,
        description="Seconds the registry may reuse a resolved `latest` (also dropped on events).",
    )


GROUPS: tuple[type[BaseModel], ...] = (
    StorageSettings,
    EventsSettings,
    HTTPSettings,
    AuthSettings,
    APISettings,
    SolverSettings,
    PackerSettings,
    RegistrySettings,
)


class Settings(*GROUPS, BaseSettings):  # type: ignore[misc]
    model_config = SettingsConfigDict(env_prefix="CONDA_STORE_", extra="ignore")

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
    def cache_root(self) -> Path:
        """``<data_dir>/cache``: every service's caches (package cache, archives, segments,
        solves, layers) sit under it, so one disk holds them all."""
        return self.data_dir.absolute() / "cache"

    @property
    def package_cache_dir(self) -> Path:
        """rattler's extracted packages, shared by packers and image builders."""
        return self.cache_root / "pkgs"

    @property
    def scratch_root(self) -> Path:
        """``<data_dir>/builds``: the packer's per-attempt work directories."""
        return self.data_dir.absolute() / "builds"

    @property
    def watch_path_list(self) -> list[Path]:
        return [Path(p.strip()) for p in re.split(r"[:,]", self.watch_paths) if p.strip()]

    def subject(self, event_type: str) -> str:
        return f"{self.subject_prefix}.events.{event_type}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
