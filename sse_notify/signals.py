"""Signals: one to ask for a notification, one to hear about sent ones.

``notify`` lets code that should not import this app's API enqueue a
notification (django-notifications-hq users will know the shape)::

    from sse_notify.signals import notify
    notify.send(sender=Order, recipient=order.customer, title="Order shipped", url=order.url)

It accepts the keyword arguments of ``send_notification`` plus ``recipient``.
Validation errors propagate to the sender, as a direct call would.

``notification_sent`` fires once per send *after commit*, with
``notifications`` (the created rows): a hook for e-mail, web push, metrics.
Receivers that raise are logged and do not affect other receivers.
"""

from __future__ import annotations

from django.dispatch import Signal

notify = Signal()
notification_sent = Signal()
