from django.apps import AppConfig


class AuxiliaresConfig(AppConfig):
    name = "apps.auxiliares"
    verbose_name = "Auxiliares"
