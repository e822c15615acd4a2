"""The local operator API: health, Prometheus metrics, equipment and last values, records, bindings,
alarms and their acknowledgement, identity exceptions, the audit trail, a live stream and the dashboard.

    api = OperatorApi(running, site.api, gateway_id, equipment)
    await api.start()          # after the journal opened, before the devices
    ...
    await api.stop()           # before the journal closes
"""

from gateway.api.app import OperatorApi, Route
from gateway.api.auth import Role, User, UserBook, add_user, read_users, remove_user
from gateway.api.config import ApiConfig

__all__ = ["ApiConfig", "OperatorApi", "Role", "Route", "User", "UserBook", "add_user", "read_users", "remove_user"]
