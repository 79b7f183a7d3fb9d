from django.urls import path

from inbox import views

urlpatterns = [
    path("", views.home, name="home"),
    path("inbox/", views.chat_list, name="chat_list"),
    path("inbox/items/", views.chat_items, name="chat_items"),
    path("inbox/counts/", views.chat_counts, name="chat_counts"),
    path("inbox/quick-replies/", views.quick_replies, name="quick_replies"),
    path(
        "inbox/quick-replies/<uuid:reply_code>/delete/",
        views.quick_reply_delete,
        name="quick_reply_delete",
    ),
    path("inbox/media/<uuid:code>/", views.media_file, name="media_file"),
    path("inbox/<uuid:code>/", views.chat_detail, name="chat_detail"),
    path("inbox/<uuid:code>/item/", views.chat_item, name="chat_item"),
    path("inbox/<uuid:code>/read/", views.chat_read, name="chat_read"),
    path("inbox/<uuid:code>/older/", views.thread_older, name="thread_older"),
    path("inbox/<uuid:code>/after/", views.thread_after, name="thread_after"),
    path(
        "inbox/<uuid:code>/messages/<uuid:message_code>/", views.message_entry, name="message_entry"
    ),
    path("inbox/<uuid:code>/send/", views.send_message, name="send_message"),
    path("inbox/<uuid:code>/template/", views.send_template, name="send_template"),
    path("inbox/<uuid:code>/rich/", views.send_rich, name="send_rich"),
    path("inbox/<uuid:code>/react/", views.react, name="react"),
    path("inbox/<uuid:code>/note/", views.add_note, name="add_note"),
    path("inbox/<uuid:code>/assign/", views.assign, name="assign"),
    path("inbox/<uuid:code>/status/", views.set_status, name="set_status"),
    path("inbox/<uuid:code>/ai/", views.set_ai, name="set_ai"),
    path("inbox/<uuid:code>/tags/", views.set_tags, name="set_tags"),
    path("inbox/<uuid:code>/contact/", views.contact_update, name="contact_update"),
    path("inbox/<uuid:code>/snooze/", views.snooze, name="chat_snooze"),
    path("inbox/<uuid:code>/priority/", views.set_priority, name="chat_priority"),
    path("inbox/<uuid:code>/later/", views.send_later, name="send_later"),
    path(
        "inbox/<uuid:code>/later/<uuid:item_code>/cancel/",
        views.scheduled_cancel,
        name="scheduled_cancel",
    ),
    path("inbox/views/", views.saved_view_save, name="saved_view_save"),
    path("inbox/views/<uuid:view_code>/delete/", views.saved_view_delete, name="saved_view_delete"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
]
