"""``python -m services.solver``: run the solver service on its own."""

from shared.service import run_service
from shared.settings import get_settings

from .service import main

if __name__ == "__main__":
    settings = get_settings()
    run_service("solver", main, settings, settings.solver_health_port)
