"""The simulator's own ASTM encoding and frame checks, written apart from the gateway's codec on purpose:
a mistake on one side is not mirrored on the other, so the integration tests can catch it.
"""

from __future__ import annotations

from datetime import datetime

from .model import Bottle

STX, ETX, EOT, ENQ, ACK, NAK, ETB, LF = 0x02, 0x03, 0x04, 0x05, 0x06, 0x15, 0x17, 0x0A
FRAME_TEXT = 240


def _stamp(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y%m%d%H%M%S")


def _esc(value: str) -> str:
    """Escape the default delimiters inside a value (&E& first, so the others stay intact)."""
    return value.replace("&", "&E&").replace("|", "&F&").replace("^", "&S&").replace("\\", "&R&")


def bottle_message(
    bottle: Bottle, now: datetime, instrument_id: str, serial: str, *, comment_pad: int = 0
) -> list[str]:
    """One bottle's result as LIS2-A2 records (the modelled layout of DOMAIN §1.6)."""
    code = "BTA_AER" if bottle.bottle_type.upper() in ("IAST", "FA PLUS", "SA", "BPA") else "BTA_ANA"
    status_text = {"positive": "POSITIVE", "negative": "NEGATIVE", "in_progress": "ONGOING"}[bottle.status]
    flag = {"positive": "A", "negative": "N", "in_progress": ""}[bottle.status]
    result_status = "I" if bottle.status == "in_progress" else "F"
    loaded, done = _stamp(bottle.loaded_at), _stamp(bottle.detected_at)
    spec = f"{_esc(bottle.specimen_id)}^{_esc(bottle.lot)}^{_esc(bottle.bottle_type)}"
    records = [
        f"H|\\^&|||BTA3D^BACT/ALERT 3D^A.51^{_esc(serial)}|||||||P|LIS2-A2|{_stamp(now)}",
        "P|1",
        f"O|1|{spec}||^^^{code}|R||{loaded}||||||||PRODUCT^CGT QC|||||||{_stamp(now)}|||"
        + ("F" if bottle.status != "in_progress" else "I"),
        f"R|1|^^^{code}^STATUS|{status_text}|||{flag}||{result_status}||AUTO|{loaded}|{done}|{_esc(instrument_id)}",
    ]
    if bottle.status == "positive":
        records.append(
            f"R|2|^^^{code}^TTD|{bottle.ttd_reported_h:.1f}|h||||F||AUTO|{loaded}|{done}|{_esc(instrument_id)}"
        )
    comment = f"BOTTLE^{_esc(bottle.bottle_id)}^CELL^{_esc(bottle.cell)}^LOAD^{loaded}"
    if comment_pad:
        comment += "^NOTE^" + "x" * comment_pad
    records.append(f"C|1|I|{comment}|G")
    records.append("L|1|N")
    return records


def as_sent_before(records: list[str], sent: dict[str, str], correcting: bool) -> list[str]:
    """Each R record as this bottle last sent it when its content is unchanged (a result sent again is the
    same record, its R.9 included); with ``correcting``, a changed result goes out with R.9 = C (E1394:
    correction of a result sent before). ``sent`` (test code -> R record) is updated."""
    out = []
    for record in records:
        if record.startswith("R|"):
            fields = record.split("|")  # values are escaped: a bare | is always a delimiter
            test = fields[2].split("^")[-1]
            before = sent.get(test)
            if before is not None and _content(before) == _content(record):
                record = before
            elif correcting and before is not None:
                fields[8] = "C"
                record = "|".join(fields)
            sent[test] = record
        out.append(record)
    return out


def _content(r_record: str) -> list[str]:
    """An R record without its result status (R.9)."""
    fields = r_record.split("|")
    return fields[:8] + fields[9:]


def frame(fn: int, text: bytes, last: bool) -> bytes:
    body = str(fn % 8).encode("ascii") + text + bytes((ETX if last else ETB,))
    return bytes((STX,)) + body + format(sum(body) % 256, "02X").encode("ascii") + b"\r\n"


def frames(records: list[str], split: bool = True) -> list[bytes]:
    """Frames of a message; ``split=False`` sends every record whole, however long (a fault)."""
    out: list[bytes] = []
    for record in records:
        text = record.encode("latin-1") + b"\r"
        pieces = [text[i : i + FRAME_TEXT] for i in range(0, len(text), FRAME_TEXT)] if split else [text]
        for i, piece in enumerate(pieces):
            out.append(frame(len(out) + 1, piece, i == len(pieces) - 1))
    return out


def check_frame(raw: bytes, expected_fn: int) -> str | None:
    """None if ``raw`` is a good frame with the expected number, else why not."""
    if len(raw) < 7 or raw[0] != STX or raw[-2:] != b"\r\n" or raw[-5] not in (ETX, ETB):
        return "malformed"
    if raw[-4:-2] != format(sum(raw[1:-4]) % 256, "02X").encode("ascii"):
        return "checksum"
    if raw[1:2] != str(expected_fn % 8).encode("ascii"):
        return "frame number"
    return None
