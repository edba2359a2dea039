from django.conf import settings
from django.db import models


class Perfil(models.Model):
    usuario = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="perfil")
    telefono = models.CharField(max_length=30, blank=True)

    class Meta:
        # Django quotes this as "cuenta"."perfil", which puts the table in the cuenta schema.
        db_table = 'cuenta"."perfil'

    def __str__(self):
        return str(self.usuario)
