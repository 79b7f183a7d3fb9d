"""Reports as tables, written to CSV or XLSX (openpyxl, write-only mode)."""

import csv
import io

from django.utils.translation import gettext as _

REPORTS = ("daily", "agents", "assistants", "funnel")
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _seconds(value):
    return "" if value is None else round(value)


def _average(value):
    return "" if value is None else round(value, 2)


def sheet_title(kind: str) -> str:
    return {
        "daily": _("Days"),
        "agents": _("Team"),
        "assistants": _("AI assistants"),
        "funnel": _("Customer journey"),
    }[kind]


def table(kind: str, data: dict) -> tuple[list[str], list[list]]:
    if kind == "daily":
        headers = [
            _("Day"), _("Conversations"), _("Messages received"), _("Messages sent"),
            _("New contacts"), _("First response median (s)"), _("First response p90 (s)"),
            _("Resolved"), _("Resolution median (s)"), _("Resolved by AI alone"), _("Handoffs"),
            _("Opt-outs"), _("AI cost"), _("CSAT answers"), _("CSAT average (1–3)"),
        ]  # fmt: skip
        rows = [
            [
                day.isoformat(),
                f.conversations,
                f.messages_in,
                f.messages_out,
                f.new_contacts,
                _seconds(f.frt_median),
                _seconds(f.frt_p90),
                f.resolved,
                _seconds(f.resolution_median),
                f.resolved_by_ai,
                f.handoffs,
                f.opt_outs,
                float(f.ai_cost),
                f.csat_responses,
                _average(f.csat_average),
            ]  # fmt: skip
            for day, f in data["days"]
        ]
        return headers, rows
    if kind == "assistants":
        headers = [
            _("AI assistant"), _("Conversations"), _("Resolved by AI alone"), _("Handoffs"),
            _("First response median (s)"), _("CSAT answers"), _("CSAT average (1–3)"),
            _("AI cost"),
        ]  # fmt: skip
        rows = [
            [
                name,
                f.conversations,
                f.resolved_by_ai,
                f.handoffs,
                _seconds(f.frt_median),
                f.csat_responses,
                _average(f.csat_average),
                float(f.ai_cost),
            ]  # fmt: skip
            for name, f in data["assistants"]
        ]
        return headers, rows
    if kind == "funnel":
        return [_("Step"), _("Contacts")], [[str(label), count] for label, count in data["funnel"]]
    headers = [
        _("Agent"), _("Conversations"), _("First response median (s)"),
        _("First response p90 (s)"), _("Resolved"), _("Resolution median (s)"),
        _("CSAT answers"), _("CSAT average (1–3)"),
    ]  # fmt: skip
    rows = [
        [
            name or _("AI or unanswered"),
            f.conversations,
            _seconds(f.frt_median),
            _seconds(f.frt_p90),
            f.resolved,
            _seconds(f.resolution_median),
            f.csat_responses,
            _average(f.csat_average),
        ]  # fmt: skip
        for name, f in data["agents"]
    ]
    return headers, rows


def write(fmt: str, headers: list[str], rows: list[list]) -> bytes:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(headers)
        writer.writerows(rows)
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 right
    return _xlsx([(None, headers, rows)])


def workbook(data: dict) -> bytes:
    """Every report of ``data`` in one XLSX file, a sheet each (the weekly email's attachment)."""
    return _xlsx([(sheet_title(kind), *table(kind, data)) for kind in REPORTS])


def _xlsx(sheets) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for title, headers, rows in sheets:
        sheet = book.create_sheet(title=title)
        sheet.append(headers)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
