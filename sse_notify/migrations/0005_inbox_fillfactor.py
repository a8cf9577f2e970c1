"""PostgreSQL: inbox pages keep half their space free, so a send's seq update stays on the page.

Every send updates each recipient's inbox row (``last_seq``, ``unread``). With
full pages (the default fillfactor 100) the new row version goes to another
page and the primary key gets a new entry; with room on the page it is a HOT
update (no index entry). A send to 100,000 users touched half the buffers
(1.2 million -> 0.6 million) and its inbox upsert took about half the time.
The table is small (one row per user). Other databases: nothing to do.
"""

from typing import Any

from django.db import migrations


def set_fillfactor(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("sse_notify", "Inbox")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def reset_fillfactor(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("sse_notify", "Inbox")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("sse_notify", "0004_email_delivery")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
