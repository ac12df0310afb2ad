"""``conda-store-server``: run the whole stack on one machine, or one service of it.

conda-store-server up                      # everything, embedded, until Ctrl-C
conda-store-server api|solver|packer|registry|ui|relay|projector
conda-store-server schemas OUTDIR          # JSON Schemas of every event
conda-store-server settings-doc FILE       # docs/settings.md: every variable, generated
conda-store-server rebuild-projections     # drop the read model and replay the log
conda-store-server audit [--since-seq N]   # print who did what, live from JetStream
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from pathlib import Path

from shared.settings import Settings, get_settings

SERVICES: dict[str, tuple[str, str | None]] = {
    # name: (module with `async def main(ctx)`, settings field of its health/listen port)
    "relay": ("services.relay.service", "relay_health_port"),
    "projector": ("services.projector.service", "projector_health_port"),
    "solver": ("services.solver.service", "solver_health_port"),
    "packer": ("services.packer.service", "packer_health_port"),
    "registry": ("services.registry.service", None),
    "ui": ("services.ui.service", None),
    "api": ("services.api.service", None),
}


BATCH = frozenset({"solver", "packer"})
"""Build work: it may fill every CPU, so it yields them to the services people wait on."""


def run_one(name: str, settings: Settings) -> None:
    from shared.service import run_service

    if name in BATCH and settings.build_worker_nice:
        os.nice(settings.build_worker_nice)
    module, port_field = SERVICES[name]
    main = importlib.import_module(module).main
    health_port = getattr(settings, port_field) if port_field else None
    run_service(name, main, settings, health_port)


def write_schemas(outdir: Path) -> list[Path]:
    from shared.events import event_json_schemas

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in event_json_schemas().items():
        path = outdir / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


async def _rebuild(settings: Settings) -> None:
    from shared.eventstore import EventStore
    from shared.projections import rebuild_projections

    if not settings.database_url:
        raise SystemExit("CONDA_STORE_DATABASE_URL is not set")
    store = await EventStore.connect(settings.database_url)
    try:
        count, seconds = await rebuild_projections(store)
    finally:
        await store.close()
    print(f"replayed {count} events in {seconds:.2f}s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="conda-store-server", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the whole stack embedded on this machine")
    for name in SERVICES:
        sub.add_parser(name, help=f"run the {name} service")
    schemas = sub.add_parser("schemas", help="write the events' JSON Schemas")
    schemas.add_argument("outdir", type=Path)
    settings_doc = sub.add_parser("settings-doc", help="write docs/settings.md")
    settings_doc.add_argument("file", type=Path)
    sub.add_parser("rebuild-projections", help="drop and replay the read model")
    audit = sub.add_parser("audit", help="print who did what, live from JetStream")
    audit.add_argument("--since-seq", type=int, default=None, help="start at this stream seq")
    audit.add_argument("--limit", type=int, default=None, help="stop after this many events")
    args = parser.parse_args(argv)

    if args.command == "settings-doc":  # documents the defaults: reads no settings
        from services.settings_doc import render

        args.file.write_text(render())
        return
    settings = get_settings()
    if args.command == "up":
        from services.embedded import run_embedded

        sys.exit(run_embedded(settings))
    elif args.command in SERVICES:
        run_one(args.command, settings)
    elif args.command == "schemas":
        for path in write_schemas(args.outdir):
            print(path)
    elif args.command == "rebuild-projections":
        asyncio.run(_rebuild(settings))
    elif args.command == "audit":
        from services.api.audit import main as audit_main

        audit_main(settings, args.since_seq, args.limit)


if __name__ == "__main__":
    main()
