"""An MES stand-in: a real HTTP server that takes the gateway's record batches as an MES would.

It implements the HTTP sink's wire contract (keeps one copy per ``(gateway_id, seq)``, answers per
record) and injects the faults a site sees: 5xx, slow answers, refused records, an endpoint that is down.
"""

from __future__ import annotations

from .standin import BadBatch, MesStandIn

__all__ = ["BadBatch", "MesStandIn"]
