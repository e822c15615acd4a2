"""`qualify oq --protocol oq-long` (not run by the suite: minutes and hours): the protocol loads, its cases
run on site files that exist and say how the long outages are run and how long they take."""

from __future__ import annotations

from gateway.qualify.oq.protocol import PROTOCOL_DIR, load_protocol, site_path

LONG = PROTOCOL_DIR / "oq-long.yaml"


def test_the_long_protocol_loads_on_existing_sites_and_says_how_it_is_run() -> None:
    protocol = load_protocol(LONG)
    assert [c.id for c in protocol.cases] == ["OQ-04L", "OQ-04H"]
    for case in protocol.cases:
        assert site_path(case, LONG).is_file(), case.id
        assert "URS-DATA-02" in case.requirements
    outages = {c.id: next(s.wait_for.seconds for s in c.steps if s.wait_for and s.wait_for.seconds) for c in
               protocol.cases}
    assert outages == {"OQ-04L": 300, "OQ-04H": 8 * 3600}
    assert "qualify oq --protocol oq-long" in " ".join(protocol.description.split())
    assert "8 h 10 min" in protocol.description and "about 5.5 minutes" in protocol.description
