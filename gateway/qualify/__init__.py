"""Qualification of an installation: IQ checks, the evidence report both IQ and OQ write, the validated-state lock.

``cgt-gateway qualify iq`` checks the installation against the site file and writes signable evidence;
``qualify baseline`` records the approved configuration and software hashes; ``run --validated`` refuses
to start when either differs from that baseline.
"""
