"""A closed processor with user accounts takes only a UserName login with the right password."""

from __future__ import annotations

import pytest
from asyncua import Client, ua

from device_sims.closed_processor import ClosedProcessorSim

pytestmark = pytest.mark.asyncio


async def _login(endpoint: str, user: str | None, password: str | None) -> None:
    client = Client(endpoint, timeout=5)
    if user is not None:
        client.set_user(user)
        client.set_password(password or "")
    await client.connect()
    await client.disconnect()


async def test_anonymous_and_a_wrong_password_are_refused_the_account_is_let_in() -> None:
    async with ClosedProcessorSim(users={"operator": "right"}) as sim:
        with pytest.raises(ua.UaStatusCodeError) as anonymous:
            await _login(sim.endpoint, None, None)
        assert anonymous.value.code == ua.StatusCodes.BadIdentityTokenRejected
        with pytest.raises(ua.UaStatusCodeError) as wrong:
            await _login(sim.endpoint, "operator", "wrong")
        assert wrong.value.code == ua.StatusCodes.BadUserAccessDenied
        await _login(sim.endpoint, "operator", "right")

