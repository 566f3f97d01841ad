from django.apps import AppConfig


class InterestConfig(AppConfig):
    name = "interest"
    verbose_name = "Interest"
    default_auto_field = "django.db.models.BigAutoField"
