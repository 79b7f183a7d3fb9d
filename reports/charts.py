"""Presentation of a report: card values with their comparison, and server-rendered SVG chart
geometry (templates only print the numbers computed here; no JavaScript library)."""

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

CHART_WIDTH, CHART_HEIGHT, PAD = 720, 180, 28


def duration(seconds) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return _("%(n)s s") % {"n": round(seconds)}
    if seconds < 3600:
        return _("%(n)s min") % {"n": formats.number_format(seconds / 60, 1)}
    if seconds < 86400:
        return _("%(n)s h") % {"n": formats.number_format(seconds / 3600, 1)}
    return _("%(n)s d") % {"n": formats.number_format(seconds / 86400, 1)}


def percent(value) -> str:
    return "—" if value is None else f"{formats.number_format(value * 100, 1)}%"


def _delta(now, before, lower_is_better=False):
    if now is None or before is None or before == 0:
        return None
    change = (float(now) - float(before)) / float(before)
    good = change < 0 if lower_is_better else change > 0
    return {"text": f"{'+' if change >= 0 else ''}{formats.number_format(change * 100, 0)}%",
            "good": good if change else None}  # fmt: skip


def number(value, decimals=None) -> str:
    return formats.number_format(value, decimals, force_grouping=True)


def csat(average) -> str:
    """A CSAT average on the survey's 1–3 scale (3 = great)."""
    return "—" if average is None else f"{number(average, 2)} / 3"


def csat_cell(figures) -> str:
    """Average and number of answers, for the team and assistant tables."""
    if not figures.csat_responses:
        return "—"
    return f"{csat(figures.csat_average)} ({figures.csat_responses})"


def cards(
    current, previous, *, has_assistants: bool, has_campaigns: bool, show_csat: bool = False
) -> list[dict]:
    def card(label, attr, fmt=str, lower_is_better=False):
        now, before = getattr(current, attr), getattr(previous, attr)
        return {
            "label": label,
            "value": fmt(now),
            "previous": fmt(before),
            "delta": _delta(now, before, lower_is_better),
        }

    result = [
        card(_("Conversations"), "conversations", number),
        card(_("Messages received"), "messages_in", number),
        card(_("Messages sent"), "messages_out", number),
        card(_("New contacts"), "new_contacts", number),
        card(_("First response (median)"), "frt_median", duration, lower_is_better=True),
        card(_("First response (p90)"), "frt_p90", duration, lower_is_better=True),
        card(_("Resolution time (median)"), "resolution_median", duration, lower_is_better=True),
        card(_("Resolved chats"), "resolved", number),
        card(_("Opt-outs"), "opt_outs", number, lower_is_better=True),
    ]
    if has_assistants:
        result += [
            card(_("Resolved by AI alone"), "ai_share", percent),
            card(_("Handoff rate"), "handoff_rate", percent, lower_is_better=True),
            card(_("AI cost"), "ai_cost", lambda v: f"$ {number(v, 2)}", lower_is_better=True),
        ]
    if has_campaigns:
        result.append(card(_("Campaign reply rate"), "campaign_conversion", percent))
    if show_csat:
        satisfaction = card(_("Customer satisfaction (CSAT)"), "csat_average", csat)
        satisfaction["note"] = ngettext(
            "%(count)s answer", "%(count)s answers", current.csat_responses
        ) % {"count": number(current.csat_responses)}
        result.append(satisfaction)
    return result


def funnel_chart(steps) -> dict:
    """Centred bars that narrow from leads to converted, each with its share of the leads."""
    bar_h, gap, label_w, numbers_w, width = 26, 8, 110, 120, 900
    top = max((count for _label, count in steps), default=0) or 1
    inner = width - label_w - numbers_w
    bars = []
    for index, (label, count) in enumerate(steps):
        w = max(round(inner * count / top, 1), 2)
        y = index * (bar_h + gap)
        share = percent(count / steps[0][1]) if steps[0][1] else "—"
        bars.append(
            {
                "label": label,
                "count": count,
                "share": share,
                "x": round(label_w + (inner - w) / 2, 1),
                "w": w,
                "y": y,
                "text_y": y + bar_h * 0.62,
            }
        )
    return {
        "bars": bars,
        "bar_h": bar_h,
        "width": width,
        "numbers_x": width,
        "height": len(steps) * (bar_h + gap),
    }


def _scale(values, height):
    top = max(values, default=0) or 1
    return top, [height - (value / top) * height for value in values]


def daily_chart(days) -> dict:
    """Two polylines (received, sent) over the period's days."""
    inner_w, inner_h = CHART_WIDTH - 2 * PAD, CHART_HEIGHT - 2 * PAD
    received = [figures.messages_in for _day, figures in days]
    sent = [figures.messages_out for _day, figures in days]
    top, _unused = _scale(received + sent, inner_h)
    step = inner_w / max(len(days) - 1, 1)

    def points(values):
        return " ".join(
            f"{PAD + i * step:.1f},{PAD + inner_h - (v / top) * inner_h:.1f}"
            for i, v in enumerate(values)
        )

    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "received": points(received),
        "sent": points(sent),
        "top": top,
        "pad": PAD,
        "bottom": PAD + inner_h,
        "right": PAD + inner_w,
        "first": days[0][0] if days else None,
        "last": days[-1][0] if days else None,
        "label_y": CHART_HEIGHT - 6,
        "top_y": PAD - 8,
    }


def histogram_chart(buckets) -> dict:
    bar_h, gap, label_w, width = 22, 8, 110, 480
    top = max((count for _label, count in buckets), default=0) or 1
    bars = []
    for index, (label, count) in enumerate(buckets):
        y = index * (bar_h + gap)
        bars.append(
            {
                "label": label,
                "count": count,
                "y": y,
                "text_y": y + bar_h * 0.7,
                "w": round((width - label_w - 50) * count / top, 1),
                "count_x": round(label_w + 4 + (width - label_w - 50) * count / top, 1),
            }
        )
    return {
        "bars": bars,
        "x": label_w,
        "bar_h": bar_h,
        "width": width,
        "height": len(buckets) * (bar_h + gap),
    }


def heat_chart(heat) -> dict:
    cell, label_w = 24, 44
    top = max((max(row) for row in heat), default=0) or 1
    weekdays = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
    rows = []
    for weekday, counts in enumerate(heat):
        y = 18 + weekday * cell
        rows.append(
            {
                "label": weekdays[weekday],
                "y": y,
                "text_y": y + cell * 0.65,
                "cells": [
                    {
                        "x": label_w + hour * cell,
                        "count": count,
                        "hour": hour,
                        "opacity": round(0.08 + 0.92 * count / top, 2) if count else 0.04,
                    }
                    for hour, count in enumerate(counts)
                ],
            }
        )
    hours = [{"x": label_w + h * cell + cell / 2, "hour": h} for h in range(0, 24, 3)]
    return {
        "rows": rows,
        "hours": hours,
        "cell": cell - 2,
        "width": label_w + 24 * cell,
        "height": 18 + 7 * cell,
    }
