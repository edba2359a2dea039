from django.apps import AppConfig


class CuentaConfig(AppConfig):
    name = "apps.cuenta"
    verbose_name = "Cuenta"
