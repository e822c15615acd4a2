"""The one error the OPC UA adapter adds to the gateway's hierarchy.

A server whose certificate is not trusted, a missing password variable or a missing endpoint policy
is not a flaky link: retrying cannot fix it, and recording the gap as Bad_CommunicationError would
tell a reviewer the wrong story. It is a DeviceError (the supervisor still owns what happens next and
journals the gap) whose quality says the configuration and the server disagree.
"""

from __future__ import annotations

from gateway.errors import DeviceError


class SetupError(DeviceError):
    """The server and this equipment's configuration disagree (trust, credentials, security policy)."""

    quality = "Bad_ConfigurationError"
