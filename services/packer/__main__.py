"""``python -m services.packer``: run the packer service on its own."""

from shared.service import run_service
from shared.settings import get_settings

from .service import main

if __name__ == "__main__":
    settings = get_settings()
    run_service("packer", main, settings, settings.packer_health_port)
