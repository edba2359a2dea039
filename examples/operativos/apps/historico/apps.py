from django.apps import AppConfig


class HistoricoConfig(AppConfig):
    name = "apps.historico"
    verbose_name = "Histórico"
