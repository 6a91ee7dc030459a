from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "shequn.core"
    label = "core"
    verbose_name = "核心"

    def ready(self) -> None:
        # Make the project's Celery app the current one in every process that runs Django, so
        # shared tasks use its configuration (eager without a broker) rather than Celery's default.
        from shequn.celery import app

        app.set_current()
