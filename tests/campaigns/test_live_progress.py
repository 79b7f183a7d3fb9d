from asgiref.sync import async_to_sync, sync_to_async
from django.test import TransactionTestCase

from accounts.models import Membership, Role, User
from campaigns import services
from tests.base import make_org
from tests.campaigns.helpers import make_campaign, make_template
from tests.inbox.test_live_consumer import connect, session_cookie


class LiveProgressTests(TransactionTestCase):
    def test_progress_reaches_the_organizations_pages_over_the_websocket(self):
        organization, number = make_org("Clínica L", "clinica-l", "555")
        user = User.objects.create_user(email="m@l.test", password="x")
        Membership.objects.create(user=user, organization=organization, role=Role.MANAGER)
        campaign = make_campaign(organization, number, make_template(number), name="Maio")
        campaign.recipients.create(
            organization=organization, contact=_contact(organization), to="1"
        )
        cookie = session_cookie(user)

        async def scenario():
            socket = connect(cookie)
            connected, _ = await socket.connect()
            self.assertTrue(connected)
            await socket.receive_json_from()  # hello
            await sync_to_async(services.progress_publish)(campaign.pk)
            event = await socket.receive_json_from(timeout=5)
            await socket.disconnect()
            return event

        event = async_to_sync(scenario)()
        self.assertEqual(event["type"], "campaign.progress")
        self.assertEqual(event["campaign"], str(campaign.code))
        self.assertEqual((event["total"], event["sent"], event["percent"]), (1, 0, 0))


def _contact(organization):
    from inbox.models import Contact

    return Contact.objects.create(
        organization=organization, wa_id="5521987000001", phone="+5521987000001"
    )
