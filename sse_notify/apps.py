from django.apps import AppConfig, apps
from django.contrib.auth.signals import user_logged_out
from django.core import checks
from django.core.signals import setting_changed
from django.utils.translation import gettext_lazy as _


class SseNotifyConfig(AppConfig):
    name = "sse_notify"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from . import checks as sse_checks
        from .categories import check_categories
        from .email_messages import check_email
        from .receivers import (
            end_streams_on_credentials_change,
            end_streams_on_logout,
            handle_notify,
            reset_cached_state,
        )
        from .signals import notify

        checks.register(sse_checks.check_settings)
        checks.register(sse_checks.check_channel_layer)
        checks.register(sse_checks.check_redis_layer)
        checks.register(check_categories)
        checks.register(check_email)
        checks.register(sse_checks.check_static_files)
        notify.connect(handle_notify, dispatch_uid="sse_notify.notify")
        setting_changed.connect(reset_cached_state, dispatch_uid="sse_notify.reset_cached_state")
        user_logged_out.connect(end_streams_on_logout, dispatch_uid="sse_notify.end_streams_on_logout")
        post_save.connect(
            end_streams_on_credentials_change,
            sender=get_user_model(),
            dispatch_uid="sse_notify.end_streams_on_credentials_change",
        )
        if apps.is_installed("django.contrib.admin"):
            # Again here: a project's own admin.py may have re-registered User after ours ran.
            from .admin import add_user_action

            add_user_action()
