from django.db import models


class Operativo(models.Model):
    nombre = models.CharField(max_length=200)
    fecha = models.DateField()
    creado = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Django quotes this as "operativos"."operativo", which puts the table in the operativos schema.
        db_table = 'operativos"."operativo'
        ordering = ("-creado", "-id")

    def __str__(self):
        return f"{self.nombre} ({self.fecha})"
