"""Authentication backends for the stream's sign-in tests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend


class NoBlockedUsersBackend(ModelBackend):
    """Overrides ``get_user``: the stream must ask it (the generic path), not read the row itself."""

    def get_user(self, user_id: Any) -> Any:
        user = super().get_user(user_id)
        if user is not None and getattr(user, "username", "").startswith("blocked"):
            return None
        return user
