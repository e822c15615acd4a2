"""cgt-gateway core: records, errors, adapter interface, normalisation, supervision, journal, CLI.

The core knows records, not protocols: concrete adapters and simulators are found through entry points.
"""

__version__ = "0.1.0"
