"""Models of the suite's own app (tables created by the test database's syncdb).

``EmailUser``: a custom user model (``AUTH_USER_MODEL = "sse_notify_tests.EmailUser"``
under ``override_settings``) with what the stream's sign-in must read as the ORM
does: its own table and columns, a field with a database converter (``JSONField``),
a ``BooleanField`` (an integer on SQLite), and its own session hash.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models


class EmailUserManager(BaseUserManager["EmailUser"]):
    def create_user(self, email: str, password: str | None = None, **extra: Any) -> EmailUser:
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user


class EmailUser(AbstractBaseUser):
    email = models.EmailField(unique=True, db_column="mail_address")
    is_active = models.BooleanField(default=True, db_column="active_flag")
    profile = models.JSONField(default=dict)

    objects = EmailUserManager()

    USERNAME_FIELD = "email"

    class Meta:
        app_label = "sse_notify_tests"
        db_table = "sse_notify_tests email user"  # quoted everywhere, or this fails

    def get_session_auth_hash(self) -> str:
        # Signs the session out when the profile's "epoch" changes, not just the password.
        from django.utils.crypto import salted_hmac

        return salted_hmac("tests.EmailUser", f"{self.password}/{self.profile.get('epoch', 0)}").hexdigest()
