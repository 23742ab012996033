"""What every use case works with: one cluster handle and the settings."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..cluster import Cluster
from ..config import Settings
from ..policy import NO_POLICY, Policy
from ..render.names import generated_name

if TYPE_CHECKING:
    from .policy import PolicyStore


class ServiceBase:
    """The collaborators of the use cases.

    ``cluster`` is the handle every API call of this request goes through: in the auth modes that act as
    the caller, it already carries the caller's credentials, so no use case ever sees them.
    """

    def __init__(
        self, cluster: Cluster, settings: Settings, *, name_factory: Callable[[str | None], str] = generated_name,
        policy_store: PolicyStore | None = None,
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.name_factory = name_factory
        self.policy_store = policy_store  # the admin policy (service/policy.py); None: no policy

    def current_policy(self) -> Policy:
        """The admin policy now (re-read by the store when its file changed)."""
        return self.policy_store.current() if self.policy_store is not None else NO_POLICY
