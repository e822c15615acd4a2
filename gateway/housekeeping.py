"""The journal's upkeep while the gateway runs: retention pruning and the storage quota alarm.

Retention removes only records that every configured sink has taken and that are older than the
window; records not yet forwarded are never pruned. The quota is a soft limit: crossing it raises
an alarm record (and its clearing a ``normal`` one) while the gateway keeps writing; the hard stop is
the journal's free-disk floor, which refuses new records loudly instead of overwriting anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import structlog

from gateway.config import JournalConfig
from gateway.journal import Journal
from gateway.records import Kind, Quality, RecordDraft, utc_now
from gateway.sinks.forwarder import cursor_name

log = structlog.get_logger(__name__)

#: Records removed per transaction, so appends never wait long behind a prune.
PRUNE_CHUNK = 50_000


class Housekeeper:
    def __init__(
        self,
        journal: Journal,
        config: JournalConfig,
        sink_names: Sequence[str],
        config_hash: str,
        *,
        interval_s: float = 60.0,
    ) -> None:
        self.journal = journal
        self.config = config
        self.sink_names = list(sink_names)
        self.config_hash = config_hash
        self.interval_s = interval_s
        self.over_quota = False
        self.pruned = 0

    async def run(self) -> None:
        """Until cancelled: one round now, then one every ``interval_s``."""
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> None:
        if self.config.retention_days is not None:
            await self.prune()
        if self.config.quota_mb is not None:
            await self.check_quota()

    async def prune(self) -> int:
        """Remove what retention allows, in chunks; return how many records went."""
        assert self.config.retention_days is not None
        through = min((self.journal.get_cursor(cursor_name(n)) for n in self.sink_names), default=self.journal.last_seq)
        older_than = utc_now() - timedelta(days=self.config.retention_days)
        removed = 0
        while True:
            chunk = await self.journal.prune(through, older_than, max_rows=PRUNE_CHUNK)
            removed += chunk
            if chunk < PRUNE_CHUNK:
                break
        if removed:
            self.pruned += removed
            log.info("journal pruned under retention", records=removed, through_seq=through,
                     retention_days=self.config.retention_days)
        return removed

    async def check_quota(self) -> None:
        """Raise (or clear) the storage alarm on a change of state: one record per transition."""
        assert self.config.quota_mb is not None
        used, free = self.journal.storage()
        over = used > self.config.quota_mb * 1e6
        if over == self.over_quota:
            return
        self.over_quota = over
        used_mb, quota_mb = used / 1e6, self.config.quota_mb
        detail = f"journal uses {used_mb:.1f} MB of its {quota_mb:g} MB quota, {free / 1e6:.0f} MB free on disk"
        if over:
            detail += "; forward the backlog or raise journal.quota_mb"
            log.error("journal over its quota; still writing", used_mb=round(used_mb, 1), quota_mb=quota_mb)
        else:
            log.info("journal back under its quota", used_mb=round(used_mb, 1))
        await self.journal.append([(self._alarm("over_quota" if over else "normal", detail), None)])

    def _alarm(self, value: str, detail: str) -> RecordDraft:
        gateway_id = self.journal.gateway_id
        return RecordDraft(
            equipment_id=gateway_id,
            equipment_class="gateway",
            parameter="journal_storage",
            source=f"journal://{gateway_id}/storage",
            kind=Kind.ALARM,
            value=value,
            quality=Quality.GOOD,
            gateway_time=utc_now(),
            detail=detail,
            config_hash=self.config_hash,
        )
