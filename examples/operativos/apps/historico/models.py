from django.db import models
from django.utils import timezone

from apps.operativos.models import Operativo


class Registro(models.Model):
    operativo = models.ForeignKey(Operativo, on_delete=models.CASCADE, related_name="registros")
    descripcion = models.TextField()
    registrado = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        # Django quotes this as "historico"."registro", which puts the table in the historico schema.
        db_table = 'historico"."registro'
        ordering = ("-registrado", "-id")

    def __str__(self):
        return f"{self.operativo_id}: {self.descripcion[:50]}"
