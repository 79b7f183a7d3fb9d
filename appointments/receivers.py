"""How the appointments app plugs into the apps below it: the router handler "booking", memo
invalidation, and (further down) assistant tools and outgoing webhook events."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from appointments import booking, outgoing_events, tools  # noqa: F401  (they register themselves)
from appointments.models import AgendaSettings, Service
from inbox import router

router.register(
    router.Handler(
        key=booking.KEY,
        order=50,
        label=_("bookings"),
        accepts=booking.accepts,
        handle=booking.handle,
    )
)


@receiver([post_save, post_delete], sender=AgendaSettings, dispatch_uid="appointments-agenda-memo")
@receiver([post_save, post_delete], sender=Service, dispatch_uid="appointments-service-memo")
def on_booking_words_changed(sender, instance, **kwargs):
    booking.keywords_changed(instance.organization_id)
