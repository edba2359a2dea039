from django.apps import AppConfig


class OperativosConfig(AppConfig):
    name = "apps.operativos"
    verbose_name = "Operativos"
