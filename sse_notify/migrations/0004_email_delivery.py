"""Email delivery state on each notification (sse_notify.emailing).

Rows that exist when this runs become ``skipped``: upgrading must not email every
old unread notification. The column is added with that as its default (no table
rewrite on PostgreSQL), then its default becomes ``pending`` for new rows.
"""

from django.db import migrations, models

STATES = [
    ("pending", "Waiting for the email delay"),
    ("immediate", "Due now"),
    ("hourly", "Waiting for the hourly digest"),
    ("daily", "Waiting for the daily digest"),
    ("claimed", "Being sent"),
    ("sent", "Emailed"),
    ("skipped", "Not emailed"),
    ("failed", "Email failed"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("sse_notify", "0003_notification_insert_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="email_state",
            field=models.CharField(
                choices=STATES,
                db_default="skipped",
                default="skipped",
                editable=False,
                max_length=10,
                verbose_name="email",
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="email_state",
            field=models.CharField(
                choices=STATES,
                db_default="pending",
                default="pending",
                editable=False,
                max_length=10,
                verbose_name="email",
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="email_claim",
            field=models.CharField(blank=True, db_default="", default="", editable=False, max_length=32),
        ),
        migrations.AddField(
            model_name="notification",
            name="emailed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="emailed"),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("email_state__in", ["pending", "immediate", "hourly", "daily"])),
                fields=["email_state", "recipient", "created_at"],
                name="sse_notify_email_waiting",
            ),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("email_state", "claimed")),
                fields=["email_claim"],
                name="sse_notify_email_claimed",
            ),
        ),
    ]
