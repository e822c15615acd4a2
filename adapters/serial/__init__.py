"""Serial-line equipment: the shared transport (:mod:`adapters.serial.transport`) and one subpackage per
line protocol (ASTM E1381/E1394 culture readers, the controlled-rate freezer's line protocol)."""
