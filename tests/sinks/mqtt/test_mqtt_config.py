"""The ``type: mqtt`` entry: strict, refuses what could lose records or leak a password; pure topic rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import load_site
from gateway.errors import ConfigError
from gateway.sinks import SinkContext, SinkError
from gateway.sinks.mqtt import MqttSink, MqttSinkConfig, plugin, record_topic, segment, status_topic

SAMPLE = Path(__file__).resolve().parents[3] / "gateway" / "sinks" / "mqtt" / "sample.yaml"


def _config(**fields: object) -> MqttSinkConfig:
    return MqttSinkConfig.model_validate({"name": "uns", "type": "mqtt", "host": "127.0.0.1"} | fields)


def _site(tmp_path: Path, entry: str) -> Path:
    site = tmp_path / "site.yaml"
    site.write_text(f"gateway: {{id: gw-suite-3}}\nequipment: []\nsinks:\n{entry}")
    return site


def test_defaults_are_safe() -> None:
    cfg = _config()
    assert (cfg.port, cfg.qos, cfg.topic_prefix, cfg.max_inflight, cfg.keepalive_s) == (1883, 1, "cgt", 20, 30)
    assert (cfg.retain_last, cfg.payload, cfg.tls, cfg.verify_tls) == (False, "json", False, True)
    sink = plugin.create(cfg, SinkContext(gateway_id="gw-suite-3"))
    assert isinstance(sink, MqttSink) and sink.name == "uns"
    assert sink.client_id == "cgt-gateway-gw-suite-3-uns"
    assert sink.status_topic == "cgt/_gateways/gw-suite-3/status"


def test_qos_0_is_refused_with_the_reason(tmp_path: Path) -> None:
    site = _site(tmp_path, "  - {name: uns, type: mqtt, host: broker, qos: 0}\n")
    with pytest.raises(ConfigError) as err:
        load_site(site, {}, sink_types={"mqtt": plugin})
    (problem,) = err.value.problems
    assert problem.startswith(f"{site}:4: sinks.0")
    assert "qos 0 can lose records" in problem and "use qos 1 or 2" in problem


def test_a_literal_password_is_refused_and_says_where_to_put_it(tmp_path: Path) -> None:
    site = _site(tmp_path, "  - name: uns\n    type: mqtt\n    host: broker\n    username: gw\n    password: hunter2\n")
    with pytest.raises(ConfigError) as err:
        load_site(site, {}, sink_types={"mqtt": plugin})
    (problem,) = err.value.problems
    assert "`password:` is not allowed" in problem and "password_env" in problem and "hunter2" not in problem


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password_env": "X"}, "need a username"),
        ({"username": "gw", "password_env": "X", "password_file": str(SAMPLE)}, "not both"),
        ({"username": "gw", "password_file": "missing.txt"}, "file not found"),
        ({"tls": True, "client_cert": str(SAMPLE)}, "client_cert and client_key go together"),
        ({"ca_file": "ca.pem"}, "file not found"),
        ({"verify_tls": False}, "verify_tls need tls: true"),
        ({"topic_prefix": "cgt/#"}, "topic_prefix"),
        ({"topic_prefix": "$SYS"}, "topic_prefix"),
        ({"payload": "sparkplug"}, "payload"),
        ({"max_inflight": 0}, "max_inflight"),
        ({"hots": "typo"}, "hots"),
    ],
)
def test_bad_entries_name_the_problem(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("$", r"\$")):
        _config(**fields)


async def test_a_missing_password_is_a_sink_failure_at_connect_not_a_stopped_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = SinkContext(gateway_id="gw-suite-3")
    monkeypatch.delenv("CGT_TEST_MQTT_PASSWORD", raising=False)
    sink = plugin.create(_config(username="gw", password_env="CGT_TEST_MQTT_PASSWORD"), ctx)  # builds fine
    with pytest.raises(SinkError, match=r"^uns: environment variable CGT_TEST_MQTT_PASSWORD \(password_env\) is not"):
        await sink.connect()
    await sink.close()

    (tmp_path / "mqtt.pw").write_text("fromfile\n")
    entry = "  - {name: uns, type: mqtt, host: broker, username: gw, password_file: mqtt.pw}\n"
    loaded = load_site(_site(tmp_path, entry), {}, sink_types={"mqtt": plugin})
    (cfg,) = loaded.site.sinks
    assert cfg.password_file == tmp_path / "mqtt.pw"  # relative to the site file


def test_the_sample_entries_load(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    for name in ("broker-ca.pem", "gw-suite-3.pem", "gw-suite-3.key"):
        (tmp_path / "pki" / name).write_text("x")
    indented = "".join(f"  {line}" for line in SAMPLE.read_text().splitlines(keepends=True))
    loaded = load_site(_site(tmp_path, indented), {}, sink_types={"mqtt": plugin})
    uns, cloud, historian = loaded.site.sinks
    assert (uns.name, uns.retain_last, cloud.topic_prefix, cloud.password_env) == (
        "uns",
        True,
        "acme/cgt",
        "CGT_MQTT_PASSWORD",
    )
    assert cloud.ca_file == tmp_path / "pki" / "broker-ca.pem"
    assert (historian.payload, historian.batch_topic, historian.batch.max_records) == ("json-batch", "equipment", 2000)


def test_topic_levels_are_sanitised() -> None:
    assert [segment(s) for s in ("a+b", "#", "x/y", "nul\x00", "", None, "grade B")] == [
        "a_b",
        "_",
        "x_y",
        "nul_",
        "_",
        "_",
        "grade B",
    ]
    record = {"isa95": None, "equipment_id": "pc-1", "parameter": "flow_rate"}
    assert record_topic("acme/cgt", record) == "acme/cgt/_unassigned/_unassigned/_unassigned/pc-1/flow_rate"
    assert status_topic("cgt", "gw/1") == "cgt/_gateways/gw_1/status"
