"""Every main page, rendered in Portuguese, shows no English UI words.

The list is of words a screen would show if a string escaped translation: buttons, headings,
common labels. Visible text and the attributes people read (placeholder, title, aria-label)
are checked; the data on the page is Portuguese, so an English word comes from the UI."""

import re
from datetime import timedelta
from html.parser import HTMLParser

from django.test import TestCase
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from accounts.models import Membership, Role
from campaigns.models import Campaign, Segment
from inbox.models import Chat, Message
from tests.base import make_chat, make_org, make_user
from tests.campaigns.helpers import make_template

ENGLISH = [
    "Save",
    "Cancel",
    "Delete",
    "Search",
    "Settings",
    "Edit",
    "Send",
    "Add",
    "Remove",
    "Back",
    "Next",
    "Previous",
    "Loading",
    "Submit",
    "Close",
    "Open",
    "Name",
    "Email",
    "Phone",
    "Yes",
    "None",
    "Today",
    "Yesterday",
    "Never",
    "Enabled",
    "Disabled",
    "Create",
    "Update",
    "Download",
    "Upload",
    "Preview",
    "Message",
    "Messages",
    "Contact",
    "Contacts",
    "Template",
    "Templates",
    "Campaign",
    "Campaigns",
    "Reply",
    "Resolve",
    "Assign",
    "Unassigned",
    "Pending",
    "Resolved",
    "Sign out",
    "Sign in",
    "Remember Me",
    "Forgot",
    "Password",
    "Welcome",
    "Choose",
    "Select",
    "Filter",
    "Clear",
    "minute",
    "minutes",
    "hour",
    "hours",
    "days",
    "ago",
    "buying words",
    "follow up",
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
    "Sun",
    "January",
    "February",
    "March",
    "April",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Inbox",
    "Reports",
    "Team",
    "Snooze",
    "Priority",
    "Launch",
    "Notifications",
]
# Not listed: words Portuguese uses too ("Status", the preposition "No").
PLACEHOLDER = re.compile(r"{\w+}")  # "{minutes}" in a Portuguese sentence is a variable
WORD = re.compile(r"\b(" + "|".join(re.escape(w) for w in ENGLISH) + r")\b")
READ_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt", "value"}


class VisibleText(HTMLParser):
    """Text a person sees, and the attributes they read; scripts, styles and code skipped."""

    SKIP = {"script", "style", "code", "pre", "template", "noscript"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        attrs = dict(attrs)
        for name in READ_ATTRIBUTES:
            value = attrs.get(name)
            if not value:
                continue
            if name == "value" and not (
                tag == "input" and attrs.get("type") in ("submit", "button")
            ):
                continue
            self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def english_words(html: str) -> set[str]:
    parser = VisibleText()
    parser.feed(html)
    found = set()
    for part in parser.parts:
        found.update(m.group(1) for m in WORD.finditer(PLACEHOLDER.sub("", part)))
    return found


def page_urls() -> list[str]:
    """Every GET page of the site without a parameter (the API, admin and sandbox aside)."""
    urls = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                if "<" in route or "(" in route or "^" in route:
                    continue
                urls.append("/" + route)

    walk(get_resolver().url_patterns, "")
    skip = ("/api", "/admin", "/sandbox", "/ws", "/healthz", "/static", "/media", "/webhooks")
    return sorted({u for u in urls if not u.startswith(skip) and not u.endswith((".js", ".json"))})


class PortuguesePagesTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.org, cls.number = make_org("Clínica Sorriso", "clinica-sorriso", "901")
        cls.org.language = "pt-br"
        cls.org.save()
        cls.admin = make_user("dona@sorriso.test", "Dona Clara")
        Membership.objects.create(user=cls.admin, organization=cls.org, role=Role.ADMIN)
        cls.chat = make_chat(cls.org, cls.number, "5511911112222", "Juliana Martins")
        Chat.objects.filter(pk=cls.chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=3),
            last_message_at=timezone.now(),
        )
        Message.objects.filter(chat=cls.chat).update(timestamp=timezone.now() - timedelta(days=1))
        template = make_template(cls.number, "appointment_reminder")
        cls.campaign = Campaign.objects.create(
            organization=cls.org, name="Lembretes", number=cls.number, template=template
        )
        cls.segment = Segment.objects.create(organization=cls.org, name="Pacientes")

    def object_urls(self) -> list[str]:
        return [
            f"/inbox/{self.chat.code}/",
            f"/campaigns/{self.campaign.code}/",
            f"/campaigns/{self.campaign.code}/launch/",
            f"/campaigns/segments/{self.segment.code}/",
        ]

    def test_no_english_ui_words_on_any_page(self):
        self.client.force_login(self.admin)
        self.client.cookies["django_language"] = "pt-br"
        problems = {}
        checked = 0
        for url in page_urls() + self.object_urls():
            response = self.client.get(url)
            if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
                continue
            checked += 1
            words = english_words(response.content.decode())
            if words:
                problems[url] = sorted(words)
        self.assertGreater(checked, 25)
        self.assertEqual(problems, {}, "English words on Portuguese pages")

    def test_the_sign_in_page_is_portuguese_too(self):
        self.client.cookies["django_language"] = "pt-br"
        response = self.client.get("/accounts/login/")
        self.assertEqual(english_words(response.content.decode()), set())
