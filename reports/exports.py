"""Reports as tables, written to CSV or XLSX (openpyxl, write-only mode)."""

import csv
import io

from django.utils.translation import gettext as _

REPORTS = ("daily", "agents")
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _seconds(value):
    return "" if value is None else round(value)


def table(kind: str, data: dict) -> tuple[list[str], list[list]]:
    if kind == "daily":
        headers = [
            _("Day"), _("Conversations"), _("Messages received"), _("Messages sent"),
            _("New contacts"), _("First response median (s)"), _("First response p90 (s)"),
            _("Resolved"), _("Resolution median (s)"), _("Resolved by AI alone"), _("Handoffs"),
            _("Opt-outs"), _("AI cost"),
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
            ]  # fmt: skip
            for day, f in data["days"]
        ]
        return headers, rows
    headers = [
        _("Agent"), _("Conversations"), _("First response median (s)"),
        _("First response p90 (s)"), _("Resolved"), _("Resolution median (s)"),
    ]  # fmt: skip
    rows = [
        [
            name or _("AI or unanswered"),
            f.conversations,
            _seconds(f.frt_median),
            _seconds(f.frt_p90),
            f.resolved,
            _seconds(f.resolution_median),
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
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
