"""Read models (namespaces, environments, builds, artifacts, packages) projected from events."""

from .model import ReadModel
from .projector import Projector, rebuild_projections

__all__ = ["Projector", "ReadModel", "rebuild_projections"]
