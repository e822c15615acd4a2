"""The worked frames of DOMAIN §1.4 and §1.6 (checksums verified there), as the tests' ground truth."""

from __future__ import annotations

STX, ETX, ETB, EOT, ENQ, ACK, NAK = b"\x02", b"\x03", b"\x17", b"\x04", b"\x05", b"\x06", b"\x15"

#: twgenaux's worked example: header, patient, order, terminator.
MINI_LIS = [
    b"\x021H|\\^&|||Mini LIS||||||||LIS2-A|20210309142633\r\x0396\r\n",
    b"\x022P|1|PID123456||NID123456|Brown^Bobby^B|White|196501020304|M\r\x0366\r\n",
    b"\x023O|1|SID305||ABO|N|20210309142633|||||N||||CENTBLOOD\r\x034B\r\n",
    b"\x024L|1|N\r\x0307\r\n",
]

#: The modelled BacT/ALERT one-bottle result (a positive, TTD 54.3 h).
BACTALERT_POSITIVE = [
    b"\x021H|\\^&|||BTA3D^BACT/ALERT 3D^A.51^SN1234|||||||P|LIS2-A2|20250114093012\r\x037D\r\n",
    b"\x022P|1\r\x033F\r\n",
    b"\x023O|1|W123425000001^CT-2025-0042-FP^iAST||^^^BTA_AER|R||20250110080000||||||||PRODUCT^CAR-T FINAL"
    b"|||||||20250114093012|||F\r\x0369\r\n",
    b"\x024R|1|^^^BTA_AER^STATUS|POSITIVE|||A||F||AUTO|20250110082300|20250112144100|BTA3D-01\r\x03FB\r\n",
    b"\x025R|2|^^^BTA_AER^TTD|54.3|h||||F||AUTO|20250110082300|20250112144100|BTA3D-01\r\x0383\r\n",
    b"\x026C|1|I|BOTTLE^2347811234^CELL^C4-12^LOAD^20250110082300|G\r\x03DC\r\n",
    b"\x027L|1|N\r\x030A\r\n",
]


def records_of(frames: list[bytes]) -> list[bytes]:
    """The record texts (without CR) of single-frame records."""
    return [f[2:-6] for f in frames]
