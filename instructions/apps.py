from django.apps import AppConfig


class InstructionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "instructions"
    verbose_name = "Standing instructions"
