from django.apps import AppConfig


class EodConfig(AppConfig):
    name = "eod"
    verbose_name = "End of day"
    default_auto_field = "django.db.models.BigAutoField"
