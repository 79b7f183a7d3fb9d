"""iCalendar (RFC 5545) text for one appointment (the confirmation's attachment) and for a
professional's subscription feed."""

from datetime import UTC, datetime

from django.utils import timezone


def _escape(text: str) -> str:
    return (
        (text or "")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\n", "\\n")
    )


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space."""
    out, data = [], line.encode()
    while len(data) > 75:
        cut = 75
        while (data[cut] & 0xC0) == 0x80:  # never split a UTF-8 character
            cut -= 1
        out.append(data[:cut].decode())
        data = b" " + data[cut:]
    out.append(data.decode())
    return "\r\n".join(out)


def event_lines(
    appointment, *, summary: str, location: str = "", description: str = ""
) -> list[str]:
    status = "CANCELLED" if appointment.status == "cancelled" else "CONFIRMED"
    return [
        "BEGIN:VEVENT",
        f"UID:{appointment.code}@porfin",
        f"DTSTAMP:{_stamp(timezone.now())}",
        f"DTSTART:{_stamp(appointment.starts_at)}",
        f"DTEND:{_stamp(appointment.ends_at)}",
        f"SUMMARY:{_escape(summary)}",
        *([f"LOCATION:{_escape(location)}"] if location else []),
        *([f"DESCRIPTION:{_escape(description)}"] if description else []),
        f"STATUS:{status}",
        f"SEQUENCE:{appointment.reschedule_count}",
        "END:VEVENT",
    ]


def calendar(events: list[list[str]], *, name: str = "") -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Porfin//Appointments//EN",
        "CALSCALE:GREGORIAN",
    ]
    if name:
        lines.append(f"X-WR-CALNAME:{_escape(name)}")
    for event in events:
        lines.extend(event)
    lines.append("END:VCALENDAR")
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
