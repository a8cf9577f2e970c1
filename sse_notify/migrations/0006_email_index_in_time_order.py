"""The email pass's index of new rows is in time order, so a send appends to it.

Every new notification is ``pending`` until the email pass sorts it. Its entry went
into an index on (state, recipient, created), at a different place for each
recipient: a send to 100,000 users touched pages all over that index (inserting its
rows on PostgreSQL: 2.2 s with it, 1.7 s with the two below). Now pending rows are
indexed by (created, id), where a send's rows go at the end, and only rows the pass
gave a mode (immediate, hourly, daily: the few whose recipient wants email) are
indexed per recipient.

The new indexes are built before the old one is dropped. On a large PostgreSQL table,
do all three steps by hand without blocking writes, then fake this migration
(``migrate sse_notify 0006 --fake``)::

    CREATE INDEX CONCURRENTLY "sse_notify_email_pending" ON "sse_notify_notification"
        ("created_at", "id") WHERE "email_state" = 'pending';
    CREATE INDEX CONCURRENTLY "sse_notify_email_due" ON "sse_notify_notification"
        ("email_state", "recipient_id", "created_at")
        WHERE "email_state" IN ('immediate', 'hourly', 'daily');
    DROP INDEX CONCURRENTLY "sse_notify_email_waiting";
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sse_notify", "0005_inbox_fillfactor"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("email_state", "pending")),
                fields=["created_at", "id"],
                name="sse_notify_email_pending",
            ),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("email_state__in", ["immediate", "hourly", "daily"])),
                fields=["email_state", "recipient", "created_at"],
                name="sse_notify_email_due",
            ),
        ),
        migrations.RemoveIndex(
            model_name="notification",
            name="sse_notify_email_waiting",
        ),
    ]
