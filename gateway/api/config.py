"""The ``api:`` site section. The model lives with the site models (the site file is validated before any
web server exists); it is re-exported here for the API's own use."""

from gateway.config._api import ApiConfig, host_port

__all__ = ["ApiConfig", "host_port"]
