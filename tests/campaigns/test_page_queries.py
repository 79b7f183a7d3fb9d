"""Statement budgets of the contacts and import pages (issue 20; timings: bench/pages.py)."""

from django.urls import reverse

from tests.base import BaseTestCase
from tests.campaigns.helpers import make_contacts
from tests.queries import assert_at_most, statements


class ContactPagesQueriesTests(BaseTestCase):
    def setUp(self):
        self.login(self.admin)
        self.client.get(reverse("home"))  # the session has chosen its organization

    def test_the_contact_list_does_not_grow_with_its_rows(self):
        with statements() as few:
            self.assertEqual(self.client.get(reverse("campaign_contact_list")).status_code, 200)
        make_contacts(self.org, 30)
        with statements() as many:
            self.assertEqual(self.client.get(reverse("campaign_contact_list")).status_code, 200)
        self.assertEqual(len(many), len(few))
        assert_at_most(self, many, 9, "contacts")

    def test_the_import_page_stays_within_its_budget(self):
        with statements() as captured:
            response = self.client.get(reverse("campaign_contact_import"))
        self.assertEqual(response.status_code, 200)
        assert_at_most(self, captured, 5, "import")
