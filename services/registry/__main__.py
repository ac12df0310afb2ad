"""``python -m services.registry``: run the registry service."""

from shared.service import run_service
from shared.settings import get_settings

from .service import main

if __name__ == "__main__":
    settings = get_settings()
    run_service("registry", main, settings, None)
