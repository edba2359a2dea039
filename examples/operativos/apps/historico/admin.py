from django.contrib import admin

from .models import Registro


@admin.register(Registro)
class RegistroAdmin(admin.ModelAdmin):
    list_display = ("operativo", "descripcion", "registrado")
    list_select_related = ("operativo",)
    raw_id_fields = ("operativo",)
