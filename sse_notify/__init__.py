"""Real-time, per-user notifications for Django over Server-Sent Events.

Importing the package has no side effects. The public API lives in
:mod:`sse_notify.api` (``send_notification``, ``asend_notification``,
``EVERYONE``) and :mod:`sse_notify.signals`.
"""

__version__ = "0.1.0"
