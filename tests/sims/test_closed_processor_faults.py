"""Faults that need their own server: restart, secure endpoints, a new certificate, the Rotea profile, scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from device_sims.closed_processor import ClosedProcessorSim, InvalidState

from .opcua_support import BIOREACTOR, read
from .support import eventually

ACTIVE = f"{BIOREACTOR}/ProgramManager/ActiveProgram"


async def test_restart_keeps_the_port_and_the_run_and_drops_sessions() -> None:
    async with ClosedProcessorSim(seed=3, time_scale=100.0, update_interval_s=0.05) as sim:
        run_id = await sim.start_program("CAR-T-STD", "LOT-7", "OP-1")
        port = sim.port
        async with Client(sim.endpoint, timeout=10) as client:
            assert sim.session_count() == 1
            assert await read(client, f"{ACTIVE}/DeviceProgramRunId") == run_id
            await sim.restart()
            assert sim.session_count() == 0  # the old session died with the old server
            with pytest.raises((ConnectionError, ua.UaError, TimeoutError)):
                await read(client, f"{ACTIVE}/DeviceProgramRunId")
        assert sim.port == port
        async with Client(sim.endpoint, timeout=10) as fresh:
            assert await read(fresh, f"{ACTIVE}/DeviceProgramRunId") == run_id
            assert await read(fresh, f"{ACTIVE}/SupervisoryJobId") == "LOT-7"
            assert sim.session_count() == 1
        with pytest.raises(InvalidState):
            await sim.start_program("CAR-T-STD", "LOT-8")

        sim.inject("restart")  # the same, from a scenario: runs in a task the simulator owns
        await eventually(lambda: sim.state().restart_count == 2, what="the injected restart")
        assert sim.port == port
        async with Client(sim.endpoint, timeout=10) as again:
            assert await read(again, f"{ACTIVE}/DeviceProgramRunId") == run_id


async def _secure_client(sim: ClosedProcessorSim, tmp_path: Path, mode: ua.MessageSecurityMode) -> Client:
    client = Client(sim.endpoint, timeout=10)
    client.application_uri = "urn:cgt-gateway:test:client"  # before the cert: the URI goes in the SAN
    cert, key = await client.setup_self_signed_certificate(tmp_path / "cli_key.pem", tmp_path / "cli_cert.der")
    assert sim.certificate_path is not None
    await client.set_security(
        SecurityPolicyBasic256Sha256, str(cert), str(key), server_certificate=str(sim.certificate_path), mode=mode
    )
    return client


async def test_sign_and_encrypt_client_trusting_the_server_cert_reads(tmp_path: Path) -> None:
    async with ClosedProcessorSim(security="sign_and_encrypt", cert_dir=str(tmp_path / "srv")) as sim:
        assert sim.certificate_path == tmp_path / "srv" / "server_cert.der" and sim.certificate_path.exists()
        client = await _secure_client(sim, tmp_path, ua.MessageSecurityMode.SignAndEncrypt)
        async with client:
            assert await read(client, "DeviceSet/ClosedProcessor/Identification/Manufacturer") == "cgt-gateway"
        plain = Client(sim.endpoint, timeout=10)
        with pytest.raises(ua.UaError, match="No matching endpoints"):
            async with plain:
                pass


async def test_certificate_change_gives_a_new_certificate_on_the_next_restart(tmp_path: Path) -> None:
    async with ClosedProcessorSim(security="both", cert_dir=str(tmp_path / "srv")) as sim:
        assert sim.certificate_path is not None
        before = sim.certificate_path.read_bytes()
        async with Client(sim.endpoint, timeout=10) as plain:  # "both" also offers None
            assert await read(plain, "DeviceSet/ClosedProcessor/DeviceState/CurrentState") == "Operating"
        sim.inject("certificate_change")
        await sim.restart()
        assert sim.certificate_path.read_bytes() != before
        client = await _secure_client(sim, tmp_path, ua.MessageSecurityMode.Sign)
        async with client:
            assert await read(client, "DeviceSet/ClosedProcessor/DeviceState/CurrentState") == "Operating"


async def test_rotea_profile_start_protocol_and_state() -> None:
    async with ClosedProcessorSim(profile="rotea", seed=5, time_scale=10.0, update_interval_s=0.05) as sim:
        async with Client(sim.endpoint, timeout=10) as client:
            idx = await client.get_namespace_index("urn:cgt-gateway:sim:closed-processor")
            rotea = await client.nodes.objects.get_child([f"{idx}:DeviceSet", f"{idx}:Rotea"])
            assert await read(client, "DeviceSet/Rotea/ProtocolState") == "Idle"
            run_id = await rotea.call_method(f"{idx}:StartProtocol", "WASH-ONLY", "BATCH-9")
            assert isinstance(run_id, str) and run_id
            assert await read(client, "DeviceSet/Rotea/ProtocolState") == "Running"
            assert await read(client, "DeviceSet/Rotea/BatchId") == "BATCH-9"
            assert await read(client, "DeviceSet/Rotea/ProtocolStepNumber") == 1
            assert await read(client, "DeviceSet/Rotea/Centrifuge/Temperature") == pytest.approx(37.0, abs=0.5)
            with pytest.raises(ua.UaStatusCodeError):
                await rotea.call_method(f"{idx}:StartProtocol", "WASH-ONLY", "BATCH-10")


async def test_scenario_injects_and_restores_on_schedule() -> None:
    scenario = [{"after_s": 0.1, "inject": "door_open"}, {"after_s": 0.4, "restore": True}]
    async with ClosedProcessorSim(update_interval_s=0.05, scenario=scenario) as sim:
        await eventually(lambda: "DoorOpen" in sim.state().alarms_active, timeout_s=10, what="door open")
        await eventually(lambda: not sim.state().alarms_active, timeout_s=10, what="door closed again")


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        ClosedProcessorSim(profile="prodigy")
    sim = ClosedProcessorSim()
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("melt")
    with pytest.raises(ValueError, match="takes"):
        sim.inject("door_open", seconds=3)
    with pytest.raises(ValueError, match="status code"):
        sim.inject("bad_status", status="BadNotAThing")
