from django.contrib import admin

from .models import Operativo


@admin.register(Operativo)
class OperativoAdmin(admin.ModelAdmin):
    list_display = ("nombre", "fecha", "creado")
    search_fields = ("nombre",)
    date_hierarchy = "fecha"
