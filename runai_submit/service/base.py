"""What every use case works with: one cluster handle and the settings."""
from __future__ import annotations

from collections.abc import Callable

from ..cluster import Cluster
from ..config import Settings
from ..render.names import generated_name


class ServiceBase:
    """The collaborators of the use cases.

    ``cluster`` is the handle every API call of this request goes through: in the auth modes that act as
    the caller, it already carries the caller's credentials, so no use case ever sees them.
    """

    def __init__(
        self, cluster: Cluster, settings: Settings, *, name_factory: Callable[[str | None], str] = generated_name
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.name_factory = name_factory
